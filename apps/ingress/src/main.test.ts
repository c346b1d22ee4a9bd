import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../bin/weft-ingress.js', import.meta.url));

describe('weft-ingress', () => {
  it('is the proxy in gateway mode (router) by default', () => {
    const help = spawnSync(process.execPath, [bin, '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('the Weft ingress gateway');
    expect(help.stdout).toContain('--type sidecar|router    proxy type (default: router)');
    expect(help.stdout).toContain('--credential-dir DIR');
  });
});
