/// <reference types="vitest" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// The gateway serves the production build at /ui/ (gateways/http/app.py), so every asset URL starts there.
// `npm run dev` proxies the gateway's REST, WebSocket API and /ui-config.json to MERCURY_GATEWAY (default :8080).
const gateway = process.env.MERCURY_GATEWAY ?? "http://127.0.0.1:8080";

export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: { outDir: "dist", sourcemap: false, chunkSizeWarningLimit: 1200 },
  server: {
    proxy: {
      "/api": gateway,
      "/ui-config.json": gateway,
      "/ws-api": { target: gateway.replace(/^http/, "ws"), ws: true },
    },
  },
  test: { include: ["test/**/*.test.ts"], environment: "node" },
});
