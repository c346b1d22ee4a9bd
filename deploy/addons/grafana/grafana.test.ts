// The Grafana addon, checked without Grafana or a cluster: every dashboard is a valid Grafana
// dashboard whose panels all have a datasource and queries, whose variables are all defined (and
// used), whose queries all parse (promtool, Debian's prometheus package); the provisioning files
// point at what the manifests provide; the kustomization renders (kubectl kustomize) into a
// Deployment that mounts the ConfigMaps generated from these very files where the provisioning
// says, and a Service in front of it. A real API server checks the objects themselves in
// deploy/manifests.kube.test.ts (server-side dry run, when a cluster answers); the queries run
// against a live mesh's Prometheus in e2e/bookinfo (src/grafana.ts).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseYamlDocuments } from '@weft/model';
import { noteSkip } from '@weft/testing';
import { describe, expect, it } from 'vitest';
import { allPanels, builtinVariables, type Dashboard, dashboardsDir, fallbackReasons, grafanaAddonDir, loadDashboards, panelQueries, type Substitution, substitute, variableQueries, variableQueryExpr, variablesIn } from './panels.ts';

const dashboards = loadDashboards();
const substitution: Substitution = { variables: { service: 'reviews.default.svc.cluster.local', namespace: 'default', workload: 'reviews-v2', datasource: 'prometheus' }, rateInterval: '1m', interval: '15s', range: '15m' };
/** `${name}`, as Grafana's files write a variable. */
const ref = (name: string) => `\${${name}}`;
const yaml = (file: string) => parseYamlDocuments(readFileSync(join(grafanaAddonDir, file), 'utf8'), file).documents[0]?.value as Record<string, unknown>;
const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
const promtoolSkip = noteSkip(has('promtool', ['--version']) ? undefined : 'needs promtool: apt-get install -y prometheus');
const kubectlSkip = noteSkip(has('kubectl', ['version', '--client']) ? undefined : 'needs kubectl (client only) to render the kustomization: https://kubernetes.io/docs/tasks/tools/');

/** Every text of a dashboard that Grafana interpolates: titles, datasources, queries, legends, variable queries. */
function interpolated(d: Dashboard): { where: string; text: string }[] {
  const out = [{ where: 'title', text: d.title }];
  for (const p of allPanels(d)) {
    out.push({ where: `panel ${p.id} title`, text: p.title }, { where: `panel ${p.id} datasource`, text: p.datasource?.uid ?? '' });
    for (const t of p.targets ?? []) {
      const where = `panel ${p.id} (${p.title}) ${t.refId}`;
      out.push({ where, text: t.expr ?? '' }, { where: `${where} legend`, text: t.legendFormat ?? '' }, { where: `${where} datasource`, text: t.datasource?.uid ?? '' });
    }
  }
  for (const v of d.templating.list) out.push({ where: `variable ${v.name}`, text: typeof v.query === 'string' ? v.query : (v.query?.query ?? '') }, { where: `variable ${v.name} datasource`, text: v.datasource?.uid ?? '' });
  return out;
}

describe('the Grafana dashboards (deploy/addons/grafana/dashboards)', () => {
  it('are the four of the issue, each valid JSON with a unique uid, tagged weft', () => {
    expect(dashboards.map((d) => d.uid).sort()).toEqual(['weft-control-plane', 'weft-mesh', 'weft-service', 'weft-workload']);
    for (const d of dashboards) {
      expect(d.tags, d.uid).toContain('weft');
      expect(d.title, d.uid).toMatch(/^Weft \/ /);
    }
  });

  it('give every panel a Prometheus datasource, queries and a place on the grid; panel ids are unique', () => {
    for (const d of dashboards) {
      const ids = new Set<number>();
      for (const p of allPanels(d)) {
        expect(ids.has(p.id), `${d.uid}: panel id ${p.id} twice`).toBe(false);
        ids.add(p.id);
        const g = p.gridPos;
        expect(g && g.x >= 0 && g.w > 0 && g.x + g.w <= 24 && g.h > 0, `${d.uid} ${p.title}: gridPos ${JSON.stringify(g)}`).toBe(true);
        if (p.type === 'row') continue;
        expect(p.title.trim(), `${d.uid} panel ${p.id}: a title`).not.toBe('');
        expect(p.datasource, `${d.uid} ${p.title}: datasource`).toEqual({ type: 'prometheus', uid: ref('datasource') });
        expect(p.targets?.length, `${d.uid} ${p.title}: targets`).toBeGreaterThan(0);
        for (const t of p.targets ?? []) {
          expect(t.expr?.trim(), `${d.uid} ${p.title} ${t.refId}: expr`).toBeTruthy();
          expect(t.datasource ?? p.datasource, `${d.uid} ${p.title} ${t.refId}: datasource`).toEqual(p.datasource);
        }
        expect(new Set(p.targets!.map((t) => t.refId)).size, `${d.uid} ${p.title}: refIds`).toBe(p.targets!.length);
      }
    }
  });

  it('use only variables they define (or Grafana’s own), and define none they do not use', () => {
    for (const d of dashboards) {
      const defined = new Set(d.templating.list.map((v) => v.name));
      const used = new Set<string>();
      for (const { where, text } of interpolated(d)) {
        for (const name of variablesIn(text)) {
          used.add(name);
          expect(defined.has(name) || builtinVariables.has(name), `${d.uid} ${where}: $${name} is not defined`).toBe(true);
        }
      }
      for (const v of d.templating.list) expect(used.has(v.name), `${d.uid}: variable ${v.name} is defined but not used`).toBe(true);
      // a variable's query may use only the variables before it (Grafana resolves them in order)
      d.templating.list.forEach((v, i) => {
        const before = new Set(d.templating.list.slice(0, i).map((x) => x.name));
        const q = typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
        for (const name of variablesIn(q)) expect(before.has(name) || builtinVariables.has(name), `${d.uid} variable ${v.name} uses $${name}, defined after it`).toBe(true);
      });
    }
  });

  it('link series to the service and workload dashboards with variables the target defines and labels every query keeps', () => {
    const byUid = new Map(dashboards.map((d) => [d.uid, d]));
    let links = 0;
    for (const d of dashboards) {
      for (const p of allPanels(d)) {
        for (const link of p.fieldConfig?.defaults?.links ?? []) {
          links++;
          const url = new URL(link.url, 'http://grafana');
          const target = byUid.get(/^\/d\/([^/]+)\//.exec(url.pathname)?.[1] ?? '');
          expect(target, `${d.uid} ${p.title}: ${link.url} names no dashboard of these`).toBeDefined();
          const vars = new Set(target!.templating.list.map((v) => v.name));
          for (const key of url.searchParams.keys()) if (key.startsWith('var-')) expect(vars.has(key.slice(4)), `${d.uid} ${p.title}: ${key} is not a variable of ${target!.uid}`).toBe(true);
          for (const m of `${link.title} ${link.url}`.matchAll(/\$\{__field\.labels\.(\w+)\}/g)) {
            for (const t of p.targets ?? []) expect(t.expr, `${d.uid} ${p.title}: the link uses ${m[1]}, which the query does not keep`).toMatch(new RegExp(`by \\([^)]*\\b${m[1]}\\b`));
          }
        }
      }
    }
    expect(links).toBeGreaterThan(0);
  });

  it('the datasource variable offers Prometheus datasources, and the other variables query it', () => {
    for (const d of dashboards) {
      expect(d.templating.list[0], d.uid).toMatchObject({ name: 'datasource', type: 'datasource', query: 'prometheus' });
      for (const v of d.templating.list.slice(1)) {
        expect(v.type, `${d.uid} ${v.name}`).toBe('query');
        expect(v.datasource, `${d.uid} ${v.name}`).toEqual({ type: 'prometheus', uid: ref('datasource') });
      }
    }
  });

  it('substitution: every form of a variable is replaced, a missing value is an error naming it', () => {
    const s: Substitution = { variables: { service: 'a.b' }, rateInterval: '1m', interval: '15s', range: '1h' };
    expect(substitute(`x{s="$service",t="\${service}",u="[[service]]",v="\${service:raw}"}[$__rate_interval] $__interval $__range_s`, s)).toBe('x{s="a.b",t="a.b",u="a.b",v="a.b"}[1m] 15s 3600');
    expect(() => substitute('x{w="$workload"}', s, 'here')).toThrow('here: no value for $workload');
    // a PromQL regex anchor is not a variable
    expect(variablesIn('x{a=~"v1$"}')).toEqual([]);
    expect(variableQueryExpr('label_values(istio_requests_total{reporter="destination"}, destination_service)')).toBe('group by (destination_service) (istio_requests_total{reporter="destination"})');
    expect(() => variableQueryExpr('metrics(istio_.*)')).toThrow('unsupported variable query');
  });

  it('loading: a file that is not JSON, or not a dashboard, is an error naming it; a panel using an undefined variable fails the listing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-grafana-load-'));
    try {
      writeFileSync(join(dir, 'broken.json'), '{"uid": "x",');
      expect(() => loadDashboards(dir)).toThrow(`${join(dir, 'broken.json')}: not valid JSON`);
      writeFileSync(join(dir, 'broken.json'), '{"uid": "x", "title": "X"}');
      expect(() => loadDashboards(dir)).toThrow('not a Grafana dashboard');
      const panel = { id: 1, type: 'timeseries', title: 'P', targets: [{ refId: 'A', expr: 'sum(rate(istio_requests_total{destination_workload="$workload"}[$__rate_interval]))' }] };
      writeFileSync(join(dir, 'broken.json'), JSON.stringify({ uid: 'x', title: 'X', panels: [panel] }));
      expect(() => panelQueries(substitution, loadDashboards(dir))).not.toThrow();
      expect(() => panelQueries({ rateInterval: '1m', interval: '15s' }, loadDashboards(dir))).toThrow('x panel 1 (P) A: no value for $workload');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('list every panel’s queries with the variables replaced', () => {
    const queries = panelQueries(substitution, dashboards);
    const targets = dashboards.flatMap((d) => allPanels(d).flatMap((p) => p.targets ?? []));
    expect(queries.length).toBe(targets.length);
    for (const q of queries) expect(variablesIn(q.expr), `${q.dashboardUid} ${q.panel}`).toEqual([]);
    const service = queries.find((q) => q.dashboardUid === 'weft-service' && q.panel === 'Requests per second');
    expect(service?.expr).toBe('sum(rate(istio_requests_total{reporter="destination",destination_service="reviews.default.svc.cluster.local"}[1m]))');
    expect(variableQueries(substitution, dashboards).map((v) => `${v.dashboardUid} ${v.variable}`)).toEqual(['weft-service service', 'weft-workload namespace', 'weft-workload workload']);
  });

  it('fall back to `or vector(0)` only for a listed reason, on metrics the mesh’s code exports', () => {
    const queries = panelQueries(substitution, dashboards).filter((q) => / or vector\(0\)\)?/.test(q.expr));
    expect(queries.length).toBeGreaterThan(0);
    for (const q of queries) expect(fallbackReasons.some((r) => q.expr.includes(r.match)) || q.expr.includes('connection_security_policy="mutual_tls"'), `${q.dashboardUid} / ${q.panel}: ${q.expr}`).toBe(true);
    for (const r of fallbackReasons) expect(queries.some((q) => q.expr.includes(r.match)), `${r.match} is used by no panel`).toBe(true);
    // each metric name is written out where it is exported (proxy telemetry, pilot, citadel)
    const sources = ['packages/proxy/src/telemetry/metrics.ts', 'packages/pilot/src/server/metrics.ts', 'packages/citadel/src/metrics.ts'].map((f) => readFileSync(join(grafanaAddonDir, '../../..', f), 'utf8')).join('\n');
    for (const r of fallbackReasons.filter((x) => /^[a-z_]+$/.test(x.match))) expect(sources, r.match).toContain(`'${r.match}'`);
  });

  it.skipIf(promtoolSkip !== undefined)('have queries that all parse as PromQL (promtool check rules)', () => {
    const exprs = [...panelQueries(substitution, dashboards).map((q) => ({ what: `${q.dashboardUid} / ${q.panel} ${q.refId}`, expr: q.expr })), ...variableQueries(substitution, dashboards).map((v) => ({ what: `${v.dashboardUid} variable ${v.variable}`, expr: v.expr }))];
    const dir = mkdtempSync(join(tmpdir(), 'weft-grafana-promql-'));
    try {
      // one recording rule per query: promtool parses each expression as Prometheus would
      const rules = join(dir, 'rules.yml');
      writeFileSync(rules, JSON.stringify({ groups: [{ name: 'weft-grafana', rules: exprs.map((e, i) => ({ record: `weft_grafana_query_${i + 1}`, expr: e.expr })) }] }));
      const r = spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' });
      const failed = [...`${r.stdout}${r.stderr}`.matchAll(/rule (\d+), "[^"]*": (.*)/g)].map((m) => `${exprs[Number(m[1]) - 1]?.what}: ${m[2]}`);
      expect(failed).toEqual([]);
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`SUCCESS: ${exprs.length} rules found`);
      // and the check can fail: a broken query is reported
      writeFileSync(rules, JSON.stringify({ groups: [{ name: 'g', rules: [{ record: 'broken', expr: 'sum(rate(istio_requests_total[$__rate_interval]))' }] }] }));
      expect(spawnSync('promtool', ['check', 'rules', rules], { encoding: 'utf8' }).status).not.toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface Container {
  name: string;
  env?: { name: string; value?: string }[];
  ports?: { containerPort: number }[];
  volumeMounts?: { name: string; mountPath: string }[];
}
interface KubeObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
  spec?: {
    selector?: Record<string, string> & { matchLabels?: Record<string, string> };
    ports?: { port: number; targetPort: number }[];
    template?: { metadata: { labels: Record<string, string> }; spec: { containers: Container[]; volumes: { name: string; configMap?: { name: string } }[] } };
  };
}

describe('the provisioning files (deploy/addons/grafana/provisioning)', () => {
  it('the datasource is the default one, uid prometheus, its URL and credentials from the environment', () => {
    const ds = (yaml('provisioning/datasources/prometheus.yaml') as { datasources: Record<string, unknown>[] }).datasources;
    expect(ds).toEqual([expect.objectContaining({ uid: 'prometheus', type: 'prometheus', isDefault: true, url: ref('PROMETHEUS_URL'), basicAuthUser: ref('PROMETHEUS_USER') })]);
  });

  it('the dashboard provider reads files from the directory in WEFT_GRAFANA_DASHBOARDS', () => {
    const providers = (yaml('provisioning/dashboards/weft.yaml') as { providers: { type: string; options: { path: string } }[] }).providers;
    expect(providers).toEqual([expect.objectContaining({ type: 'file', options: expect.objectContaining({ path: ref('WEFT_GRAFANA_DASHBOARDS') }) })]);
  });
});

describe.skipIf(kubectlSkip !== undefined)('the Kubernetes manifests (kubectl kustomize deploy/addons/grafana)', () => {
  const rendered = () => {
    const r = spawnSync('kubectl', ['kustomize', grafanaAddonDir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`kubectl kustomize: ${r.stderr}`);
    return r.stdout
      .split(/^---$/m)
      .map((d) => parseYamlDocuments(d, 'kustomize').documents[0]?.value as KubeObject | undefined)
      .filter((o): o is KubeObject => o !== undefined);
  };

  it('a Deployment that mounts the ConfigMaps generated from these files where the provisioning expects them, and a Service in front', () => {
    const objects = rendered();
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'ConfigMap', 'Deployment', 'Service']);
    for (const o of objects) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('istio-system');
    // a client-side `kubectl apply -k` keeps the whole object in an annotation, and the API server
    // allows 256 KiB of annotations: the dashboards' ConfigMap must fit with room to spare
    for (const o of objects) expect(JSON.stringify(o).length, `${o.kind} ${o.metadata.name}`).toBeLessThan(200 * 1024);
    const configMaps = objects.filter((o) => o.kind === 'ConfigMap');
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const pod = deployment.spec!.template!;
    const grafana = pod.spec.containers.find((c) => c.name === 'grafana')!;
    const env = Object.fromEntries((grafana.env ?? []).map((e) => [e.name, e.value ?? '']));
    const mountOf = (configMap: KubeObject) => {
      const volume = pod.spec.volumes.find((v) => v.configMap?.name === configMap.metadata.name);
      return grafana.volumeMounts?.find((m) => m.name === volume?.name)?.mountPath;
    };
    // each ConfigMap holds the files byte for byte, mounted where Grafana looks for them
    const expected: Record<string, { files: string[]; mount: string }> = {
      'grafana-datasources': { files: ['provisioning/datasources/prometheus.yaml'], mount: `${env.GF_PATHS_PROVISIONING}/datasources` },
      'grafana-dashboard-providers': { files: ['provisioning/dashboards/weft.yaml'], mount: `${env.GF_PATHS_PROVISIONING}/dashboards` },
      'grafana-dashboards-weft': { files: dashboards.map((d) => `dashboards/${d.file.slice(dashboardsDir.length + 1)}`), mount: env.WEFT_GRAFANA_DASHBOARDS! },
    };
    expect(configMaps.map((c) => c.metadata.name.replace(/-[a-z0-9]{10}$/, '')).sort()).toEqual(Object.keys(expected).sort());
    for (const cm of configMaps) {
      const want = expected[cm.metadata.name.replace(/-[a-z0-9]{10}$/, '')]!;
      expect(Object.keys(cm.data ?? {}).sort(), cm.metadata.name).toEqual(want.files.map((f) => f.split('/').pop()).sort());
      for (const f of want.files) expect(cm.data![f.split('/').pop()!], f).toBe(readFileSync(join(grafanaAddonDir, f), 'utf8'));
      expect(mountOf(cm), cm.metadata.name).toBe(want.mount);
    }
    expect(env.GF_PATHS_PROVISIONING).toBe('/etc/grafana/provisioning');
    // every ${VAR} the provisioning files read is set
    for (const f of ['provisioning/datasources/prometheus.yaml', 'provisioning/dashboards/weft.yaml']) {
      for (const m of readFileSync(join(grafanaAddonDir, f), 'utf8').matchAll(/^[^#]*\$\{(\w+)\}/gm)) expect(env, `${f}: ${m[1]}`).toHaveProperty(m[1]!);
    }
    expect(env.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${env.WEFT_GRAFANA_DASHBOARDS}/weft-mesh.json`);
    const service = objects.find((o) => o.kind === 'Service')!;
    expect(Object.entries(service.spec!.selector!).every(([k, v]) => pod.metadata.labels[k] === v), 'the Service selects the pod').toBe(true);
    expect(service.spec!.ports!.map((p) => p.targetPort)).toEqual(grafana.ports!.map((p) => p.containerPort));
  });

  it('the datasource URL is the Prometheus addon’s Service in the same namespace', () => {
    const grafana = rendered().find((o) => o.kind === 'Deployment')!.spec!.template!.spec.containers[0]!;
    const url = new URL(grafana.env!.find((e) => e.name === 'PROMETHEUS_URL')!.value!);
    const r = spawnSync('kubectl', ['kustomize', join(grafanaAddonDir, '../prometheus/base')], { encoding: 'utf8' });
    const prometheus = r.stdout
      .split(/^---$/m)
      .map((d) => parseYamlDocuments(d, 'kustomize').documents[0]?.value as KubeObject | undefined)
      .find((o) => o?.kind === 'Service');
    expect(prometheus?.metadata).toMatchObject({ name: url.hostname, namespace: 'istio-system' });
    expect(prometheus?.spec?.ports?.map((p) => p.port)).toContain(Number(url.port));
  });
});
