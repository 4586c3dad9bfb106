import { defineConfig } from 'vite';

// Preact's automatic JSX runtime through esbuild: no framework plugin needed.
// `npm run dev` proxies the API and the WebSocket to an imd on 127.0.0.1:8080.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  // No modulepreload polyfill: every browser of es2020 but Safari < 17 preloads modules, and a
  // missing preload only makes a lazy chunk start a little later.
  build: { target: 'es2020', assetsDir: 'assets', sourcemap: false, modulePreload: { polyfill: false } },
  server: {
    proxy: {
      '/api': 'http://127.0.0.1:8080',
      '/ws': { target: 'ws://127.0.0.1:8080', ws: true },
    },
  },
});
