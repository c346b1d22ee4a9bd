// Installing and removing the capture rules on a real network namespace. Each family's rules go in
// with one `iptables-restore --noflush` transaction, so a pod never sees half of them; removal is
// one transaction per family too.
import type { CaptureConfig } from './config.ts';
import { buildCaptureRuleSet, isIstioChain, type Rule, renderRestorePayload } from './rules.ts';
import type { CaptureLogger, CommandRunner } from './system.ts';

export interface IptablesFamily {
  name: 'ipv4' | 'ipv6';
  iptables: string;
  save: string;
  restore: string;
}

/** The tools for each family; `base` picks a variant such as `iptables-legacy` or `iptables-nft`. */
export function iptablesFamilies(base = 'iptables'): { ipv4: IptablesFamily; ipv6: IptablesFamily } {
  const v6 = base.replace(/^iptables/, 'ip6tables');
  return {
    ipv4: { name: 'ipv4', iptables: base, save: `${base}-save`, restore: `${base}-restore` },
    ipv6: { name: 'ipv6', iptables: v6, save: `${v6}-save`, restore: `${v6}-restore` },
  };
}

export interface SavedRule {
  chain: string;
  /** The rule as iptables-save printed it, starting with "-A CHAIN". */
  line: string;
}

export interface SavedTable {
  chains: string[];
  rules: SavedRule[];
}

/** Parses iptables-save output into tables, their chains and rules. */
export function parseIptablesSave(text: string): Map<string, SavedTable> {
  const tables = new Map<string, SavedTable>();
  let current: SavedTable | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      const name = line.slice(1).trim();
      current = tables.get(name) ?? { chains: [], rules: [] };
      tables.set(name, current);
    } else if (line.startsWith(':') && current) {
      current.chains.push(line.slice(1).split(/\s+/)[0]!);
    } else if (line.startsWith('-A ') && current) {
      current.rules.push({ chain: line.split(/\s+/)[1]!, line });
    }
  }
  return tables;
}

function jumpTarget(tokens: string[]): string | undefined {
  const i = tokens.findIndex((t) => t === '-j' || t === '--jump');
  return i >= 0 ? tokens[i + 1] : undefined;
}

/** Whether a saved state holds anything of ours: an ISTIO_* chain, or a jump to one. */
export function hasCaptureResidue(state: Map<string, SavedTable>): boolean {
  for (const t of state.values()) {
    if (t.chains.some(isIstioChain)) return true;
    if (t.rules.some((r) => isIstioChain(jumpTarget(r.line.split(/\s+/)) ?? ''))) return true;
  }
  return false;
}

/** A rule's arguments for `iptables -C`/`-D`: the chain and its matches, without -A/-I and position. */
function ruleSpec(rule: Rule): string[] {
  return rule.params[0] === '-I' ? [rule.chain, ...rule.params.slice(3)] : [rule.chain, ...rule.params.slice(2)];
}

export interface CaptureOptions {
  runner: CommandRunner;
  log: CaptureLogger;
  /** Remove leftovers that differ from the wanted rules before applying. */
  reconcile?: boolean;
  /** Apply even when the wanted rules seem to be in place already. */
  forceApply?: boolean;
  /** iptables variant (`iptables`, `iptables-legacy`, `iptables-nft`). */
  iptablesBinary?: string;
}

export interface ApplyResult {
  /** Families whose rules were written now. */
  applied: Array<'ipv4' | 'ipv6'>;
  /** Families whose rules were already exactly in place. */
  unchanged: Array<'ipv4' | 'ipv6'>;
}

async function must(runner: CommandRunner, what: string, command: string, args: string[], input?: string): Promise<string> {
  const r = await runner(command, args, input);
  if (r.code !== 0) {
    const detail = r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`;
    throw new Error(`${what} failed (${command} ${args.join(' ')}): ${detail}`);
  }
  return r.stdout;
}

/**
 * Whether the live rules of a family equal the wanted ones, as Istio decides it: every wanted
 * ISTIO_* chain exists with the same number of rules, and every wanted rule passes `iptables -C`.
 */
async function matchesWanted(runner: CommandRunner, family: IptablesFamily, state: Map<string, SavedTable>, rules: Rule[]): Promise<boolean> {
  const wanted = new Map<string, number>();
  for (const r of rules) if (isIstioChain(r.chain)) wanted.set(`${r.table} ${r.chain}`, (wanted.get(`${r.table} ${r.chain}`) ?? 0) + 1);
  for (const [key, count] of wanted) {
    const [table, chain] = key.split(' ') as [string, string];
    const live = state.get(table);
    if (!live?.chains.includes(chain)) return false;
    if (live.rules.filter((r) => r.chain === chain).length !== count) return false;
  }
  for (const r of rules) {
    const check = await runner(family.iptables, ['-t', r.table, '-C', ...ruleSpec(r)]);
    if (check.code !== 0) return false;
  }
  return true;
}

/** Installs the capture rules of `cfg` (IPv4, and IPv6 when enabled) and the routes TPROXY needs. */
export async function applyCapture(cfg: CaptureConfig, opts: CaptureOptions): Promise<ApplyResult> {
  const { runner, log } = opts;
  const families = iptablesFamilies(opts.iptablesBinary);
  const set = buildCaptureRuleSet(cfg);
  const plan = [{ family: families.ipv4, rules: set.ipv4 }];
  if (cfg.enableIpv6) plan.push({ family: families.ipv6, rules: set.ipv6 });
  const result: ApplyResult = { applied: [], unchanged: [] };

  const todo: typeof plan = [];
  for (const step of plan) {
    const state = parseIptablesSave(await must(runner, 'reading the current rules', step.family.save, []));
    if (!hasCaptureResidue(state)) {
      todo.push(step);
      continue;
    }
    const same = await matchesWanted(runner, step.family, state, step.rules);
    if (same && !opts.forceApply) {
      log.info('capture rules already in place; nothing to apply', { family: step.family.name });
      result.unchanged.push(step.family.name);
      continue;
    }
    if (same) {
      todo.push(step);
      continue;
    }
    if (!opts.reconcile) {
      throw new Error(
        `found ISTIO_* chains or jumps (${step.family.name}) that differ from the wanted rules; run \`weft-iptables clean\` first or pass --reconcile`,
      );
    }
    log.warn('removing leftover capture rules that differ from the wanted ones', { family: step.family.name });
    await cleanFamily(runner, step.family, step.rules, log);
    todo.push(step);
  }

  const done: typeof plan = [];
  for (const step of todo) {
    const payload = renderRestorePayload(step.rules);
    if (payload === '') continue;
    try {
      await must(runner, `applying ${step.family.name} capture rules`, step.family.restore, ['--noflush'], payload);
    } catch (err) {
      // Do not leave one family captured and the other not.
      for (const prev of done) await cleanFamily(runner, prev.family, prev.rules, log);
      throw err;
    }
    done.push(step);
    result.applied.push(step.family.name);
    log.info('applied capture rules', { family: step.family.name, rules: step.rules.length });
  }

  await configureRoutes(cfg, runner, log);
  return result;
}

/** The `ip` commands that TPROXY and IPv6 need besides the rules (Istio's ConfigureRoutes). */
export function routeCommands(cfg: CaptureConfig): string[][] {
  const out: string[][] = [];
  // IPv6 lo only holds ::1/128, so the inbound passthrough source ::6 must be added to bind to it.
  if (cfg.enableIpv6) out.push(['-6', 'addr', 'add', '::6/128', 'dev', 'lo']);
  if (cfg.inboundPortsInclude !== '' && cfg.inboundInterceptionMode === 'TPROXY') {
    const families = cfg.enableIpv6 ? (['-4', '-6'] as const) : (['-4'] as const);
    for (const f of families) out.push([f, 'rule', 'add', 'fwmark', cfg.inboundTProxyMark, 'lookup', cfg.inboundTProxyRouteTable]);
    for (const f of families) {
      out.push([f, 'route', 'add', 'local', f === '-4' ? '0.0.0.0/0' : '::/0', 'dev', 'lo', 'table', cfg.inboundTProxyRouteTable]);
    }
  }
  return out;
}

async function configureRoutes(cfg: CaptureConfig, runner: CommandRunner, log: CaptureLogger): Promise<void> {
  for (const args of routeCommands(cfg)) {
    const r = await runner('ip', args);
    if (r.code !== 0 && !/exists|already assigned/i.test(r.stderr)) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr.trim()}`);
    log.info('configured route', { command: `ip ${args.join(' ')}` });
  }
}

export interface CleanResult {
  /** Per family: the chains removed and the jumps/rules deleted from built-in chains. */
  removed: Array<{ family: 'ipv4' | 'ipv6'; chains: string[]; rules: string[] }>;
}

/**
 * Removes one family's capture rules in one transaction: every jump from a built-in chain into an
 * ISTIO_* chain (as the live state spells it), the config's own rules in built-in chains (excluded
 * interfaces, TPROXY marks), then the ISTIO_* chains themselves. Nothing else is touched.
 */
async function cleanFamily(
  runner: CommandRunner,
  family: IptablesFamily,
  configured: Rule[],
  log: CaptureLogger,
): Promise<{ chains: string[]; rules: string[] }> {
  const save = await runner(family.save, []);
  if (save.code !== 0) {
    log.warn('cannot read rules; skipping family', { family: family.name, error: save.stderr.trim() });
    return { chains: [], rules: [] };
  }
  const state = parseIptablesSave(save.stdout);
  const removedChains: string[] = [];
  const removedRules: string[] = [];
  let payload = '';
  for (const [table, live] of state) {
    const lines: string[] = [];
    for (const r of live.rules) {
      if (isIstioChain(r.chain)) continue;
      if (isIstioChain(jumpTarget(r.line.split(/\s+/)) ?? '')) {
        lines.push(`-D ${r.line.slice(3)}`);
        removedRules.push(`${table}: ${r.line}`);
      }
    }
    const seen = new Set<string>();
    for (const r of configured) {
      if (r.table !== table || isIstioChain(r.chain) || isIstioChain(r.params[r.params.length - 1] ?? '')) continue;
      const spec = ruleSpec(r);
      if (seen.has(spec.join(' '))) continue;
      seen.add(spec.join(' '));
      // The live state may spell the rule differently (iptables-save adds "-m tcp" and the like), so ask iptables.
      const check = await runner(family.iptables, ['-t', table, '-C', ...spec]);
      if (check.code === 0) {
        lines.push(`-D ${spec.join(' ')}`);
        removedRules.push(`${table}: -A ${spec.join(' ')}`);
      }
    }
    const chains = live.chains.filter(isIstioChain);
    // Flush all first: ISTIO chains jump to each other, and a chain can only go once nothing refers to it.
    for (const c of chains) lines.push(`-F ${c}`);
    for (const c of chains) lines.push(`-X ${c}`);
    removedChains.push(...chains.map((c) => `${table}/${c}`));
    if (lines.length > 0) payload += `*${table}\n${lines.join('\n')}\nCOMMIT\n`;
  }
  if (payload !== '') {
    await must(runner, `removing ${family.name} capture rules`, family.restore, ['--noflush'], payload);
    log.info('removed capture rules', { family: family.name, chains: removedChains, rules: removedRules });
  }
  return { chains: removedChains, rules: removedRules };
}

/**
 * Removes what `applyCapture` installed: the ISTIO_* chains and all jumps into them in both
 * families, the config's own rules in built-in chains, and the TPROXY policy route. The ::6
 * address on lo stays (Istio leaves it too; removing it could break a running proxy's binds).
 */
export async function cleanCapture(cfg: CaptureConfig, opts: CaptureOptions): Promise<CleanResult> {
  const { runner, log } = opts;
  const families = iptablesFamilies(opts.iptablesBinary);
  const set = buildCaptureRuleSet({ ...cfg, enableIpv6: true });
  const result: CleanResult = { removed: [] };
  for (const [family, rules] of [
    [families.ipv4, set.ipv4],
    [families.ipv6, set.ipv6],
  ] as const) {
    const removed = await cleanFamily(runner, family, rules, log);
    result.removed.push({ family: family.name, ...removed });
  }
  if (cfg.inboundInterceptionMode === 'TPROXY') {
    for (const args of routeCommands({ ...cfg, enableIpv6: true })) {
      if (args[1] === 'addr') continue;
      const del = args.map((a) => (a === 'add' ? 'del' : a));
      const r = await runner('ip', del);
      if (r.code === 0) log.info('removed route', { command: `ip ${del.join(' ')}` });
    }
  }
  return result;
}
