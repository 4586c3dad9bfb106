#!/usr/bin/env node
// What the web client's bundle is made of: builds web/ with Vite into a temporary directory
// (web/dist is left alone) and prints, per JavaScript chunk, its size minified and gzip -9, the
// modules in it by their size minified alone (esbuild) and gzipped alone (a module's share of
// the chunk's gzip is roughly that), then the CSS and the other assets. Initial chunks are those index.html
// loads; lazy ones come by dynamic import. Run: node scripts/web-size.mjs (after web-deps.sh).

import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';

const WEB = resolve(dirname(fileURLToPath(import.meta.url)), '../web');
const { build } = await import(pathToFileURL(join(WEB, 'node_modules/vite/dist/node/index.js')).href);
const { transformSync } = createRequire(join(WEB, 'package.json'))('esbuild');

const gz = (s) => gzipSync(s, { level: 9 }).length;
const kb = (n) => n.toLocaleString('en-US').padStart(9);

const out = mkdtempSync(join(tmpdir(), 'imd-web-size-'));
const chunks = [];
try {
  await build({
    root: WEB,
    logLevel: 'warn',
    build: { outDir: out, emptyOutDir: true },
    plugins: [
      {
        name: 'imd-size',
        generateBundle(_options, bundle) {
          for (const f of Object.values(bundle)) {
            if (f.type !== 'chunk') continue;
            const modules = Object.entries(f.modules)
              .filter(([, m]) => m.code)
              .map(([id, m]) => {
                const min = transformSync(m.code, { minify: true, target: 'es2020' }).code;
                return { id: relative(WEB, id.replace(/\0|\?.*$/g, '')), min: min.length, gz: gz(min) };
              })
              .sort((a, b) => b.min - a.min);
            chunks.push({ file: f.fileName, entry: f.isEntry, dynamic: f.isDynamicEntry, imports: f.imports, modules });
          }
        },
      },
    ],
  });
  const html = readFileSync(join(out, 'index.html'), 'utf8');
  // Initial: the entry and what it imports statically (modulepreload), transitively.
  const initial = new Set();
  const visit = (file) => {
    if (initial.has(file)) return;
    initial.add(file);
    chunks.find((c) => c.file === file)?.imports.forEach(visit);
  };
  chunks.filter((c) => c.entry).forEach((c) => visit(c.file));
  let total = { initial: 0, lazy: 0 };
  for (const c of chunks.sort((a, b) => Number(initial.has(b.file)) - Number(initial.has(a.file)))) {
    const code = readFileSync(join(out, c.file));
    const kind = initial.has(c.file) ? 'initial' : 'lazy';
    total[kind] += gz(code);
    console.log(`\n${c.file} (${kind}): ${kb(code.length)} bytes minified, ${kb(gz(code))} gzip`);
    for (const m of c.modules) console.log(`  ${kb(m.min)} min ${kb(m.gz)} gzip  ${m.id}`);
  }
  console.log(`\nJavaScript gzip: initial ${total.initial.toLocaleString('en-US')} bytes, lazy ${total.lazy.toLocaleString('en-US')} bytes`);
  for (const f of readdirSync(join(out, 'assets')).filter((f) => !f.endsWith('.js'))) {
    const b = readFileSync(join(out, 'assets', f));
    console.log(`${f}: ${b.length.toLocaleString('en-US')} bytes, gzip ${gz(b).toLocaleString('en-US')}${html.includes(f) ? ' (initial)' : ''}`);
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
