/** Light/dark theme from the user's preference ("system" follows the OS). */
import { useEffect } from "react";

export type ThemePreference = "light" | "dark" | "system";

// The preference is cached (not secret) so the first paint after a reload has the right colours.
const STORAGE_KEY = "kibitz.theme";

export function isThemePreference(value: unknown): value is ThemePreference {
  return value === "light" || value === "dark" || value === "system";
}

export function storedThemePreference(): ThemePreference {
  try {
    const value = localStorage.getItem(STORAGE_KEY);
    return isThemePreference(value) ? value : "system";
  } catch {
    return "system";
  }
}

function systemPrefersDark(): boolean {
  return window.matchMedia("(prefers-color-scheme: dark)").matches;
}

export function applyTheme(preference: ThemePreference): void {
  const resolved = preference === "system" ? (systemPrefersDark() ? "dark" : "light") : preference;
  document.documentElement.dataset.theme = resolved;
  document.documentElement.style.colorScheme = resolved;
  try {
    localStorage.setItem(STORAGE_KEY, preference);
  } catch {
    // storage disabled: the theme still applies for this page
  }
}

/** Keep the document's theme in step with a preference (and with the OS when it is "system"). */
export function useTheme(preference: ThemePreference): void {
  useEffect(() => {
    applyTheme(preference);
    if (preference !== "system") return;
    const media = window.matchMedia("(prefers-color-scheme: dark)");
    const onChange = () => applyTheme("system");
    media.addEventListener("change", onChange);
    return () => media.removeEventListener("change", onChange);
  }, [preference]);
}
