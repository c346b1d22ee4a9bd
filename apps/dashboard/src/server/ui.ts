// The page: index.html and one bundle of src/ui/main.ts, built in memory with esbuild when the
// dashboard starts (no build step, nothing written to disk) and served from memory after that.
// Without src/ui (a checkout where the UI is not there yet) a small page lists the API instead.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export interface UiAsset {
  type: string;
  body: Buffer;
}

export interface Ui {
  /** `/`, `/ui/main.js`, ... */
  assets: Map<string, UiAsset>;
  /** Milliseconds the build took (0 for the placeholder). */
  buildMs: number;
  placeholder: boolean;
}

const uiDir = fileURLToPath(new URL('../ui/', import.meta.url));

const page = (head: string, body: string) => `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Weft dashboard</title>
<link rel="icon" href="data:,">
${head}
</head>
<body>
${body}
</body>
</html>
`;

const placeholder = page(
  '',
  `<main id="app"><h1>Weft dashboard</h1>
<p>The page's code (apps/dashboard/src/ui) is not in this checkout; the JSON API answers:</p>
<ul>
<li><a href="/api/status">/api/status</a></li>
<li><a href="/api/graph">/api/graph</a></li>
<li><a href="/api/services">/api/services</a></li>
<li><a href="/api/proxies">/api/proxies</a></li>
<li><a href="/api/traces">/api/traces</a></li>
<li><a href="/prometheus/">/prometheus/</a></li>
</ul></main>`,
);

/** Builds the UI (or the placeholder); throws with esbuild's messages when the UI does not build. */
export async function buildUi(entry?: string): Promise<Ui> {
  const main = entry ?? ['main.ts', 'main.tsx'].map((f) => `${uiDir}${f}`).find((f) => existsSync(f));
  const assets = new Map<string, UiAsset>();
  if (!main) {
    assets.set('/', { type: 'text/html; charset=utf-8', body: Buffer.from(placeholder) });
    return { assets, buildMs: 0, placeholder: true };
  }
  const t0 = performance.now();
  // Loaded only here: a dashboard without the UI never pays for it.
  const { build, stop } = await import('esbuild');
  const r = await build({
    entryPoints: { main },
    bundle: true,
    write: false,
    outdir: '/ui',
    format: 'esm',
    // The graph's Cytoscape and ELK (most of the bytes) are a chunk the page imports when it draws.
    splitting: true,
    chunkNames: 'chunk-[hash]',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    logLevel: 'silent',
    legalComments: 'none',
  }).finally(() => {
    // esbuild's service is a child process; nothing is built after start, so it goes now.
    void stop();
  });
  const head: string[] = [];
  const scripts: string[] = [];
  for (const f of r.outputFiles) {
    const name = `/ui/${f.path.split('/').pop()}`;
    const type = name.endsWith('.js') ? 'text/javascript; charset=utf-8' : name.endsWith('.css') ? 'text/css; charset=utf-8' : name.endsWith('.map') ? 'application/json' : 'application/octet-stream';
    assets.set(name, { type, body: Buffer.from(f.contents) });
    if (name.endsWith('.css')) head.push(`<link rel="stylesheet" href="${name}">`);
    // Only the entry: it imports the chunks it needs itself. (Preloading the graph's chunk from the
    // page's head made no difference to the load time: 1434 against 1427 ms median, 8 loads each.)
    if (name === '/ui/main.js') scripts.push(`<script type="module" src="${name}"></script>`);
  }
  // The UI's own index.html when it has one (it loads /ui/main.js), else a page around the bundle.
  const own = `${uiDir}index.html`;
  const html = entry === undefined && existsSync(own) ? await readFile(own) : Buffer.from(page(head.join('\n'), `<div id="app"></div>\n${scripts.join('\n')}`));
  assets.set('/', { type: 'text/html; charset=utf-8', body: html });
  return { assets, buildMs: Math.round(performance.now() - t0), placeholder: false };
}
