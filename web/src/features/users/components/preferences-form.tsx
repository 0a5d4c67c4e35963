import { Alert, ErrorAlert } from "@/components/ui/alert";
import { Card, CardHeader } from "@/components/ui/card";
import { SelectField } from "@/components/ui/field";
import { type ThemePreference, applyTheme } from "@/lib/theme";
import type { Profile } from "../api/get-me";
import { useUpdateMe } from "../api/update-me";

const THEMES: { value: ThemePreference; label: string; description: string }[] = [
  { value: "light", label: "Light", description: "Bright and crisp" },
  { value: "dark", label: "Dark", description: "Easy on the eyes" },
  { value: "system", label: "System", description: "Follow your device" },
];

export interface AgentOption {
  id: string;
  name: string;
  model: string;
}

export function PreferencesForm({ profile, agents }: { profile: Profile; agents: AgentOption[] }) {
  const update = useUpdateMe();
  const theme = profile.preferences.theme ?? "system";
  const defaultAgentId = profile.preferences.default_agent_id ?? "";
  // The box shows the choice at once, while it is being saved (and the stored one if that fails).
  const savingTitles = update.isPending ? update.variables.preferences?.propose_titles : undefined;
  const proposeTitles = savingTitles ?? profile.preferences.propose_titles === true;

  const setTheme = (value: ThemePreference) => {
    applyTheme(value);
    update.mutate({ preferences: { theme: value } });
  };

  return (
    <Card>
      <CardHeader title="Preferences" description="Saved to your account, on every device." />
      <div className="form form--wide">
        {update.error ? <ErrorAlert error={update.error} /> : null}
        <fieldset className="segmented" aria-label="Theme">
          <legend className="field__label">Theme</legend>
          <div className="segmented__options">
            {THEMES.map((option) => (
              <label key={option.value} className={`segmented__option ${theme === option.value ? "is-selected" : ""}`}>
                <input type="radio" name="theme" value={option.value} checked={theme === option.value} onChange={() => setTheme(option.value)} />
                <span className={`theme-swatch theme-swatch--${option.value}`} aria-hidden="true" />
                <span>
                  <span className="segmented__label">{option.label}</span>
                  <span className="segmented__description">{option.description}</span>
                </span>
              </label>
            ))}
          </div>
        </fieldset>
        <SelectField
          label="Default agent"
          name="default_agent_id"
          value={defaultAgentId}
          hint="Pre-selected when you start a new chat."
          onChange={(e) => update.mutate({ preferences: { default_agent_id: e.target.value || null } })}
        >
          <option value="">Ask me each time</option>
          {agents.map((agent) => (
            <option key={agent.id} value={agent.id}>
              {agent.name} · {agent.model}
            </option>
          ))}
        </SelectField>
        <label className="checkbox checkbox--described">
          <input
            type="checkbox"
            name="propose_titles"
            checked={proposeTitles}
            onChange={(e) => update.mutate({ preferences: { propose_titles: e.target.checked } })}
          />
          <span>
            <span className="field__label">Let the agent title new chats</span>
            <span className="field__hint">After its first reply the agent names the chat in a few words. This uses a few tokens of your plan.</span>
          </span>
        </label>
        {update.isSuccess ? <Alert tone="success">Preferences saved.</Alert> : null}
      </div>
    </Card>
  );
}
