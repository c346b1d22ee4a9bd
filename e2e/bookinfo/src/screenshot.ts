// A real browser on the product page: Debian's headless Chromium driven by playwright-core (no
// browser download: its executablePath). Signs in as jason through the page's own dialog, then
// captures the page with reviews v2's black stars.
import { accessSync, constants } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installCommand, noteSkip } from '@weft/testing';
import { expect, it } from 'vitest';
import type { BookinfoDriver } from './driver.ts';
import { networking } from './reference.ts';

const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/lib/chromium/chromium'].filter((p): p is string => !!p);

/** Debian's Chromium (`apt-get install chromium`), or $CHROMIUM_PATH. */
export function chromiumPath(): string | undefined {
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return undefined;
}

/** Width and height from a PNG's signature and IHDR chunk; throws when it is not a PNG. */
export function pngSize(bytes: Uint8Array): { width: number; height: number } {
  const signature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
  if (bytes.length < 33 || signature.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG (bad signature)');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') throw new Error('not a PNG (no IHDR chunk first)');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

/** Where the screenshot goes: $WEFT_E2E_ARTIFACTS, else a directory of this user's in the temp dir. */
export const artifactDir = process.env.WEFT_E2E_ARTIFACTS ?? join(tmpdir(), `weft-e2e-bookinfo-artifacts-${process.getuid?.() ?? 'user'}`);

/** Registers the screenshot test (inside a describe whose driver is running). */
export function screenshotScenario(driver: () => BookinfoDriver): void {
  const executablePath = chromiumPath();
  noteSkip(executablePath ? undefined : `needs Chromium for the screenshot, none at ${candidates.join(', ')} (${installCommand(['chromium'])}, or set CHROMIUM_PATH)`);
  it.skipIf(!executablePath)('headless Chromium signs in as jason and captures the product page with black stars (reviews-test-v2)', async () => {
    const d = driver();
    await d.apply([networking('destination-rule-all.yaml')]);
    await d.apply([networking('virtual-service-reviews-test-v2.yaml')]);
    const { chromium } = await import('playwright-core');
    // Chromium refuses to run as root with its sandbox on; as another user its sandbox needs user
    // namespaces, which some containers lack: then it runs without (the page is our own).
    const launch = (noSandbox: boolean) => chromium.launch({ executablePath: executablePath!, headless: true, args: noSandbox ? ['--no-sandbox'] : [] });
    const browser = process.getuid?.() === 0 ? await launch(true) : await launch(false).catch(() => launch(true));
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const first = await page.goto(d.productpageUrl);
      expect(first?.status()).toBe(200);
      // Not signed in: v1 for everyone else, no stars.
      expect(await page.locator('div.gap-x-1').count()).toBe(0);
      await page.click('#sign-in-button');
      await page.fill('#username', 'jason');
      await page.fill('#password', 'jason');
      await Promise.all([page.waitForURL(d.productpageUrl), page.click('#login-button')]);
      await expect.poll(() => page.locator('p.text-base.font-medium.text-gray-50').textContent()).toBe('jason');
      const wrappers = page.locator('div.gap-x-1.text-black-500');
      expect(await wrappers.count()).toBe(2);
      const full = page.locator('div.gap-x-1.text-black-500 svg[fill="currentColor"]');
      expect(await full.count()).toBe(9);
      expect(await page.locator('div.gap-x-1.text-red-500').count()).toBe(0);
      // Visible and black as rendered: the computed fill of every full star.
      for (let i = 0; i < 9; i++) {
        const star = full.nth(i);
        expect(await star.isVisible()).toBe(true);
        const box = await star.boundingBox();
        expect(box && box.width > 5 && box.height > 5).toBe(true);
        // Runs in the page (DOM types are not part of this Node project's lib).
        const fill = await star.evaluate((el) => (globalThis as unknown as { getComputedStyle(e: unknown): { fill: string } }).getComputedStyle(el).fill);
        expect(fill).toBe('rgb(0, 0, 0)');
      }
      await mkdir(artifactDir, { recursive: true });
      const file = join(artifactDir, `productpage-jason-v2-${d.name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      const bytes = new Uint8Array(await readFile(file));
      const size = pngSize(bytes);
      console.log(`screenshot: ${file} (${size.width}x${size.height}, ${bytes.length} bytes)`);
      expect(size.width).toBe(1280);
      expect(size.height).toBeGreaterThanOrEqual(900);
      expect(bytes.length).toBeGreaterThan(20_000);
    } finally {
      await browser.close();
      await d.delete([networking('virtual-service-reviews-test-v2.yaml')]);
      await d.delete([networking('destination-rule-all.yaml')]);
    }
  });
}
