import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { App } from "@/app/app";
import { applyTheme, storedThemePreference } from "@/lib/theme";
import "@/app/styles/index.css";

// Paint with the last known theme before anything loads.
applyTheme(storedThemePreference());

const root = document.getElementById("root");
if (!root) throw new Error("missing #root");
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
