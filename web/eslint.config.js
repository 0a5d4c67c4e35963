import js from "@eslint/js";
import reactHooks from "eslint-plugin-react-hooks";
import globals from "globals";
import tseslint from "typescript-eslint";

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
      "no-restricted-imports": [
        "error",
        { patterns: [{ group: ["rehype-raw"], message: "Raw HTML in markdown is not allowed." }] },
      ],
    },
  },
  // Features never import each other: only app/ composes them.
  ...["auth", "chat", "agents", "dashboard", "settings"].map((feature) => ({
    files: [`src/features/${feature}/**/*.{ts,tsx}`],
    rules: {
      "no-restricted-imports": [
        "error",
        {
          patterns: [
            {
              group: ["@/features/*", "!@/features/" + feature, "!@/features/" + feature + "/**", "../../*/**"],
              message: "Features never import each other; move shared code to src/components or src/lib.",
            },
            { group: ["@/app/*"], message: "Features must not import from the app layer." },
          ],
        },
      ],
    },
  })),
);
