import { Navigate, createBrowserRouter } from "react-router";
import { AppLayout } from "./layouts/app-layout";
import { AgentsRoute } from "./routes/agents";
import { ChatRoute } from "./routes/chat";
import { DashboardRoute } from "./routes/dashboard";
import { KnowledgeRoute } from "./routes/knowledge";
import { PublicOnly, RequireAuth } from "./routes/guards";
import { LoginRoute } from "./routes/login";
import { NotFoundRoute } from "./routes/not-found";
import { RegisterRoute } from "./routes/register";
import { RouteError } from "./routes/route-error";
import { SettingsRoute } from "./routes/settings";

export const router = createBrowserRouter([
  { path: "/", element: <Navigate to="/dashboard" replace /> },
  {
    element: <PublicOnly />,
    errorElement: <RouteError />,
    children: [
      { path: "/login", element: <LoginRoute /> },
      { path: "/register", element: <RegisterRoute /> },
    ],
  },
  {
    element: <RequireAuth />,
    errorElement: <RouteError />,
    children: [
      {
        element: <AppLayout />,
        children: [
          { path: "/dashboard", element: <DashboardRoute /> },
          { path: "/chat/:chatId?", element: <ChatRoute /> },
          { path: "/agents", element: <AgentsRoute /> },
          { path: "/knowledge", element: <KnowledgeRoute /> },
          { path: "/settings", element: <SettingsRoute /> },
          { path: "*", element: <NotFoundRoute /> },
        ],
      },
    ],
  },
]);
