// The page's stylesheet, injected by main.ts (the bundle is the whole UI: no CSS file to serve).
export const css = `
:root { color-scheme: light; font-family: system-ui, -apple-system, sans-serif; font-size: 14px; color: #0f172a; background: #f8fafc; }
body { margin: 0; }
header { display: flex; align-items: center; gap: 24px; padding: 8px 20px; background: #0f172a; color: #fff; }
header h1 { font-size: 18px; margin: 0; letter-spacing: 0.04em; }
nav { display: flex; gap: 4px; }
nav a { color: #cbd5e1; text-decoration: none; padding: 6px 12px; border-radius: 6px; }
nav a.active, nav a:hover { background: #1e293b; color: #fff; }
main { padding: 12px 20px 40px; }
h2 { font-size: 17px; margin: 8px 0; }
h3 { font-size: 14px; margin: 18px 0 6px; }
.banners { padding: 0 20px; }
.banner { margin-top: 8px; padding: 8px 12px; background: #fef3c7; border: 1px solid #f59e0b; border-radius: 6px; }
.error-box { margin: 8px 0; padding: 8px 12px; background: #fee2e2; border: 1px solid #ef4444; border-radius: 6px; }
.muted { color: #64748b; }
.small { font-size: 12px; }
.good { color: #15803d; }
.bad { color: #dc2626; }
.warn { color: #b45309; }
.badge { display: inline-block; padding: 1px 6px; border-radius: 4px; font-size: 12px; font-weight: 600; background: #e2e8f0; }
.badge.good { background: #dcfce7; }
.badge.bad { background: #fee2e2; }
.badge.warn { background: #fef3c7; }
.toolbar { display: flex; align-items: center; gap: 16px; flex-wrap: wrap; }
.legend { display: flex; align-items: center; gap: 6px; color: #475569; }
.swatch { display: inline-block; width: 18px; height: 3px; background: #64748b; margin-left: 8px; }
.swatch.mtls { background: #15803d; }
.swatch.error { background: #dc2626; }
.swatch.idle { background: repeating-linear-gradient(90deg, #cbd5e1 0 4px, transparent 4px 7px); }
.graph-canvas { position: relative; overflow: hidden; height: 520px; border: 1px solid #e2e8f0; border-radius: 8px; background: #fff; margin: 8px 0 12px; }
.graph-overlay { position: absolute; inset: 0; pointer-events: none; z-index: 10; }
.edge-lock { position: absolute; left: 0; top: 0; display: inline-flex; padding: 1px; border-radius: 3px; background: #fff; color: #15803d; line-height: 0; }
table { border-collapse: collapse; width: 100%; background: #fff; margin: 4px 0 12px; }
caption { text-align: left; color: #64748b; padding: 4px 0; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #e2e8f0; vertical-align: top; }
th { background: #f1f5f9; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.error td { color: #dc2626; }
tr.idle td { color: #94a3b8; }
code { font-family: ui-monospace, monospace; font-size: 12px; }
.card { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 10px 12px; margin: 6px 0; }
.source { color: #475569; margin-left: 8px; }
.routes { margin: 6px 0 0; }
.waterfall { background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; }
.span-row { display: grid; grid-template-columns: 38% 1fr 80px; align-items: center; border-bottom: 1px solid #f1f5f9; min-height: 24px; }
.span-name { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; font-size: 12px; }
.span-track { position: relative; height: 12px; margin: 0 8px; background: #f8fafc; }
.span-bar { position: absolute; top: 0; bottom: 0; background: #3b82f6; border-radius: 2px; }
.span-bar.error { background: #dc2626; }
.span-ms { font-size: 12px; padding-right: 8px; }
.span-row.axis { background: #f1f5f9; font-size: 11px; }
.axis .span-track { background: none; height: 16px; }
.tick { position: absolute; transform: translateX(-50%); white-space: nowrap; color: #64748b; }
.tick:first-child { transform: none; }
.tick:last-child { transform: translateX(-100%); }
.why-form { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 10px; align-items: end; background: #fff; border: 1px solid #e2e8f0; border-radius: 8px; padding: 12px; }
.why-form label { display: flex; flex-direction: column; gap: 4px; font-weight: 600; }
.why-form .wide { grid-column: span 3; }
.why-form input, .why-form select, .why-form textarea { font: inherit; padding: 4px 6px; font-weight: normal; }
.why-form button { padding: 8px 12px; font: inherit; font-weight: 600; }
.kv th { width: 160px; }
.lock { color: #15803d; display: inline-flex; align-items: center; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
pre { white-space: pre-wrap; font-size: 12px; }
`;
