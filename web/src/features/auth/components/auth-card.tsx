import type { ReactNode } from "react";

export function AuthCard({ title, subtitle, children, footer }: { title: string; subtitle: string; children: ReactNode; footer: ReactNode }) {
  return (
    <div className="auth">
      <div className="auth__panel">
        <div className="auth__brand">
          <span className="brand-mark" aria-hidden="true" />
          <span className="brand-name">kibitz</span>
        </div>
        <h1 className="auth__title">{title}</h1>
        <p className="auth__subtitle">{subtitle}</p>
        {children}
        <p className="auth__footer">{footer}</p>
      </div>
      <aside className="auth__aside" aria-hidden="true">
        <div className="auth__quote">
          <p className="auth__quote-title">Your agents, your rules.</p>
          <p>Configure assistants with the model, instructions and temperature you want, and chat with them in real time.</p>
          <ul className="auth__points">
            <li>Replies stream token by token</li>
            <li>OpenAI, Anthropic or your own endpoint</li>
            <li>Plans that grow with your team</li>
          </ul>
        </div>
      </aside>
    </div>
  );
}
