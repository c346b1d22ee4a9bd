// Help cannot drift from the parsers: each command's --help is compared with the flags its parser
// accepts, and the README's example output and exit statuses with what weftctl really prints.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exitStatus, flagDocs } from './help.ts';
import { commandFlags, commands } from './main.ts';
import { runWeftctlCommand } from './testing.ts';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const bin = join(root, 'apps/weftctl/bin/weftctl.js');
const readme = readFileSync(join(root, 'README.md'), 'utf8');

const weftctl = (...argv: string[]) => runWeftctlCommand(argv);

const longOf = new Map(flagDocs.filter((d) => d.short).map((d) => [d.short!, d.long]));

/** The long names of the flags a piece of help text mentions (`-f` counts as `--filename`). */
function flagsIn(text: string): string[] {
  const found = new Set<string>();
  for (const [, long] of text.matchAll(/(?<![\w-])--([a-z][a-z-]*)/g)) found.add(long!);
  for (const [, short] of text.matchAll(/(?<![\w-])-([a-zA-Z])\b/g)) found.add(longOf.get(short!) ?? `?-${short}`);
  found.delete('help');
  return [...found].sort();
}

describe('weftctl help', () => {
  it('lists every command in --help, each with its own --help', async () => {
    const all = await weftctl('--help');
    expect(all.code).toBe(0);
    expect(commands).toHaveLength(17);
    for (const c of commands) {
      expect(all.out).toContain(`  weftctl ${c}`);
      const own = await weftctl(c, '--help');
      expect(own.code, c).toBe(0);
      expect(own.out).toMatch(new RegExp(`^Usage:\\n  weftctl ${c}\\b`));
      expect(await weftctl('help', c)).toEqual(own);
    }
  });

  for (const c of commands) {
    it(`${c}: the synopsis and the options in its --help are exactly the flags its parser accepts`, async () => {
      const help = (await weftctl(c, '--help')).out;
      const [synopsis, options] = help.split('\nOptions:\n');
      const accepted = [...commandFlags(c)!].sort();
      expect(flagsIn(synopsis!.split('\n').slice(0, 2).join('\n'))).toEqual(accepted);
      expect(flagsIn(options!.split('\n\nExit status:')[0]!)).toEqual(accepted);
      // And the parser really refuses a flag of another command.
      const foreign = flagDocs.find((d) => d.long !== 'help' && !accepted.includes(d.long))!;
      const refused = await weftctl(c, `--${foreign.long}`, 'x');
      expect(refused.code).toBe(2);
      expect(refused.err).toMatch(new RegExp(`(${c} does not take |Unknown option ')--${foreign.long}`));
    });
  }

  it('--help describes every flag any command takes', async () => {
    const all = (await weftctl('--help')).out;
    const taken = [...new Set(commands.flatMap((c) => commandFlags(c)!))].sort();
    expect(flagsIn(all.split('\nOptions:\n')[1]!.split('\n\nExit status:')[0]!)).toEqual(taken);
    expect(all).toContain(exitStatus);
  });

  it('suggests the nearest command for a typo and lists them all', () => {
    const r = spawnSync(process.execPath, [bin, 'aplly', '-f', 'x.yaml'], { cwd: root, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`weftctl: unknown command "aplly" (did you mean "apply"?); commands: ${commands.join(', ')}\n`);
    const far = spawnSync(process.execPath, [bin, 'frobnicate'], { cwd: root, encoding: 'utf8' });
    expect(far.stderr).toContain('unknown command "frobnicate"; commands: validate, analyze');
  });
});

describe('the README', () => {
  it('shows the exit statuses weftctl --help gives', () => {
    expect(readme).toContain(exitStatus);
  });

  it('shows exactly what `weftctl validate` prints for its example', () => {
    const block = /```\n\$ npx weftctl (validate [^\n]*)\n([^`]*)```/.exec(readme);
    expect(block, 'a ```-block starting with `$ npx weftctl validate ...`').not.toBeNull();
    const r = spawnSync(process.execPath, [bin, ...block![1]!.split(' ')], { cwd: root, encoding: 'utf8' });
    expect(r.stdout).toBe(block![2]);
    expect(r.status).toBe(1);
  });
});
