import react from "@vitejs/plugin-react";
import { fileURLToPath, URL } from "node:url";
import { defineConfig } from "vite";

// The gateway (kibitz up) answers every API route; in `vite dev` we forward them to it.
const gateway = process.env.KIBITZ_GATEWAY_URL ?? "http://127.0.0.1:8000";
const apiPrefixes = [
  "/auth",
  "/users",
  "/tenants",
  "/chat",
  "/agents",
  "/knowledge",
  "/billing",
  "/v1",
  "/healthz",
];

export default defineConfig({
  plugins: [react()],
  resolve: {
    alias: { "@": fileURLToPath(new URL("./src", import.meta.url)) },
  },
  server: {
    proxy: Object.fromEntries(
      apiPrefixes.map((prefix) => [
        prefix,
        {
          target: gateway,
          changeOrigin: false,
          // A page load of a client route such as /chat/<id> is the app's, not the API's.
          bypass: (req: { headers: Record<string, string | string[] | undefined>; url?: string }) =>
            String(req.headers.accept ?? "").includes("text/html") ? "/index.html" : undefined,
        },
      ]),
    ),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    // The markdown stack is a chunk of its own, loaded on first use (components/markdown.tsx).
    chunkSizeWarningLimit: 500,
  },
});
