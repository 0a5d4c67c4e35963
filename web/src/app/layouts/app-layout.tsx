import { useState } from "react";
import { Link, NavLink, Outlet } from "react-router";
import { Badge } from "@/components/ui/badge";
import { AgentIcon, BookIcon, CloseIcon, DashboardIcon, LogoutIcon, MenuIcon, PlusIcon, SettingsIcon } from "@/components/ui/icons";
import { useLogout } from "@/features/auth/api/logout";
import { ChatList } from "@/features/chat/components/chat-list";
import { ChatSearch } from "@/features/chat/components/chat-search";
import { resetLiveChats } from "@/features/chat/stores/live-chats";
import { useMe } from "@/features/users/api/get-me";
import { Avatar } from "@/features/users/components/avatar";
import { planLabel } from "@/lib/format";
import { useOnlineStatus } from "@/lib/online-status";
import { isThemePreference, storedThemePreference, useTheme } from "@/lib/theme";

const NAV = [
  { to: "/dashboard", label: "Dashboard", icon: <DashboardIcon /> },
  { to: "/agents", label: "Agents", icon: <AgentIcon /> },
  { to: "/knowledge", label: "Knowledge", icon: <BookIcon /> },
  { to: "/settings", label: "Settings", icon: <SettingsIcon /> },
];

/** The signed-in shell: sidebar (navigation, chats, account) and the page. */
export function AppLayout() {
  const me = useMe();
  const logout = useLogout();
  const online = useOnlineStatus();
  const [menuOpen, setMenuOpen] = useState(false);
  const preference = me.data?.preferences.theme;
  useTheme(isThemePreference(preference) ? preference : storedThemePreference());

  const close = () => setMenuOpen(false);
  const displayName = me.data?.full_name || me.data?.email || "";
  const plan = me.data?.subscription?.plan;

  const onLogout = () => {
    // Signing out leaves this page through the route guard (session ended -> /login).
    resetLiveChats();
    logout.mutate();
  };

  return (
    <div className={`shell ${menuOpen ? "shell--menu-open" : ""}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <button type="button" className="icon-btn" aria-label="Open menu" aria-expanded={menuOpen} onClick={() => setMenuOpen(true)}>
          <MenuIcon />
        </button>
        <Link to="/dashboard" className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">kibitz</span>
        </Link>
        <Link to="/chat" className="icon-btn" aria-label="New chat">
          <PlusIcon />
        </Link>
      </header>
      <div className="scrim" onClick={close} aria-hidden="true" />
      <aside className="sidebar" aria-label="Main">
        <div className="sidebar__top">
          <Link to="/dashboard" className="brand" onClick={close}>
            <span className="brand-mark" aria-hidden="true" />
            <span className="brand-name">kibitz</span>
          </Link>
          <button type="button" className="icon-btn sidebar__close" aria-label="Close menu" onClick={close}>
            <CloseIcon />
          </button>
        </div>
        <Link to="/chat" className="btn btn--primary btn--block sidebar__new" onClick={close}>
          <PlusIcon /> New chat
        </Link>
        <nav className="sidebar__nav">
          {NAV.map((item) => (
            <NavLink key={item.to} to={item.to} className={({ isActive }) => `nav-item ${isActive ? "is-active" : ""}`} onClick={close}>
              <span className="nav-item__icon" aria-hidden="true">
                {item.icon}
              </span>
              {item.label}
            </NavLink>
          ))}
        </nav>
        <p className="sidebar__section">Chats</p>
        <div className="sidebar__chats">
          <ChatSearch onNavigate={close}>
            <ChatList onNavigate={close} />
          </ChatSearch>
        </div>
        <div className="sidebar__account">
          <Avatar name={displayName || "?"} url={me.data?.avatar_url} size="sm" />
          <div className="sidebar__who">
            <span className="sidebar__name" title={displayName}>
              {displayName || "…"}
            </span>
            {plan ? <Badge tone="accent">{planLabel(plan)}</Badge> : null}
          </div>
          <button type="button" className="icon-btn" onClick={onLogout} aria-label="Log out" title="Log out" disabled={logout.isPending}>
            <LogoutIcon />
          </button>
        </div>
      </aside>
      <main id="main" className="main">
        {!online ? (
          <div className="banner banner--warning" role="status">
            You are offline. Replies resume and changes can be sent when the connection is back.
          </div>
        ) : null}
        <Outlet />
      </main>
    </div>
  );
}
