import { defineConfig } from 'vite';

// Preact's automatic JSX runtime through esbuild: no framework plugin needed.
// `npm run dev` proxies the API and the WebSocket to an imd on 127.0.0.1:8080.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { target: 'es2020', assetsDir: 'assets', sourcemap: false },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
