import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import { readdirSync } from "node:fs";
import tseslint from "typescript-eslint";

const features = readdirSync(new URL("./src/features", import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory())
  .map((entry) => entry.name);

const noRawHtml = { group: ["rehype-raw"], message: "Raw HTML in markdown is not allowed." };

export default tseslint.config(
  { ignores: ["dist", "node_modules"] },
  {
    files: ["**/*.{ts,tsx}"],
    extends: [js.configs.recommended, ...tseslint.configs.strict],
    languageOptions: { ecmaVersion: 2022, globals: globals.browser },
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      "no-restricted-syntax": [
        "error",
        {
          selector: "JSXAttribute[name.name='dangerouslySetInnerHTML']",
          message: "Never inject raw HTML; render text or use react-markdown.",
        },
      ],
      "no-restricted-imports": ["error", { patterns: [noRawHtml] }],
    },
  },
  // Features never import each other (only src/app composes them) nor the app layer.
  ...features.map((feature) => ({
    files: [`src/features/${feature}/**/*.{ts,tsx}`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            noRawHtml,
            {
              group: ["@/features/*", `!@/features/${feature}`, "../../*"],
              message: "Features never import each other; move shared code to src/components or src/lib.",
            },
            { group: ["@/app", "@/app/*"], message: "Features must not import from the app layer." },
          ],
        },
      ],
    },
  })),
  {
    files: ["src/lib/**/*.{ts,tsx}", "src/components/**/*.{ts,tsx}"],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            noRawHtml,
            { group: ["@/features", "@/features/*", "@/app", "@/app/*"], message: "Shared code never depends on features or the app." },
          ],
        },
      ],
    },
  },
);
