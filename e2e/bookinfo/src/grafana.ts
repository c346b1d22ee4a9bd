// No dead Grafana panel: every query of the dashboards in deploy/addons/grafana, run against the
// Prometheus that scrapes the running BookInfo mesh after traffic, returns series with values.
// "Has data" means what the panel shows over its dashboard's default time range (15 minutes): a
// time series panel's query evaluated every $__interval over the range (a subquery), at least one
// series with one finite value; a table's instant query, at least one series now. Panels that
// honestly show 0 through `or vector(0)` until something happens (NACKs, refused CSRs, TCP traffic)
// are allowed so only for the reasons panels.ts lists, and the test prints which ones did.
import { expect, it } from 'vitest';
import { fallbackReasons, loadDashboards, panelQueries, type Substitution, variableQueries } from '../../../deploy/addons/grafana/panels.ts';
import type { BookinfoDriver } from './driver.ts';
import { PageUser } from './page.ts';
import { networking } from './reference.ts';

/** The dashboards' default time range and the step Grafana would use for a panel of ~1000 px. */
const range = '15m';
const step = '15s';
const fallback = / or vector\(0\)$/;

export function grafanaScenario(driver: () => BookinfoDriver): void {
  it('every Grafana panel query returns series from the mesh’s Prometheus after BookInfo traffic (deploy/addons/grafana)', async (ctx) => {
    const d = driver();
    const prom = d.prometheus;
    if (!prom) {
      ctx.skip(`the ${d.name} driver has no Prometheus (local: weftctl up's addon, apt-get install -y prometheus)`);
      return;
    }
    // Changes to converge on (pushes, push time, convergence): all-v1, then reviews-test-v2 as the
    // tutorial goes. Push time is by xDS type, and a type's series is born at its first push with
    // the count already 1: Prometheus sees a rate only from a push after it has scraped the series
    // once, so the second change waits for that scrape (a fresh mesh's first change shows no push time).
    await d.apply([networking('destination-rule-all.yaml')]);
    await d.apply([networking('virtual-service-all-v1.yaml')]);
    for (const end = Date.now() + 30_000; ((await prom.value('count(pilot_xds_push_time_count)')) ?? 0) === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 1000));
    await d.apply([networking('virtual-service-reviews-test-v2.yaml')]);
    // traffic through every service: jason's pages go to reviews v2, which calls ratings; the others to v1
    const jason = new PageUser(d.productpageUrl);
    await jason.login('jason');
    await jason.loadMany(10);
    await new PageUser(d.productpageUrl).loadMany(20);

    const ns = d.namespace;
    const substitution: Substitution = { variables: { service: `reviews.${ns}.svc.cluster.local`, namespace: ns, workload: 'reviews-v2', datasource: 'prometheus' }, rateInterval: '1m', interval: step, range };
    const dashboards = loadDashboards();
    const queries = panelQueries(substitution, dashboards);
    const count = async (promql: string) => (await prom.value(`count(${promql})`)) ?? 0;
    // series with at least one finite value over the range (NaN > -Inf is false)
    const withData = (expr: string, instant: boolean) => (instant ? count(expr) : count(`max_over_time((${expr})[${range}:${step}]) > -Inf`));

    interface Result {
      title: string;
      series: number;
      /** The reason a `... or vector(0)` panel shows its 0, when the metric has no samples. */
      zero?: string;
      problem?: string;
    }
    const check = async (): Promise<Result[]> => {
      const out: Result[] = [];
      // one query at a time: this runs on 2 cores beside the mesh
      for (const q of queries) {
        const title = `${q.dashboard} › ${q.panel} [${q.refId}]`;
        const series = await withData(q.expr, q.instant);
        if (series === 0) out.push({ title, series, problem: 'no series with data' });
        else if (!fallback.test(q.expr)) out.push({ title, series });
        else {
          const lhs = q.expr.replace(fallback, '');
          const reason = fallbackReasons.find((r) => lhs.includes(r.match));
          if ((await withData(lhs, q.instant)) > 0) out.push({ title, series });
          else if (reason) out.push({ title, series, zero: `${reason.match}: ${reason.why}` });
          else out.push({ title, series, problem: `only the vector(0) fallback answers, and panels.ts gives no reason why ${lhs} may have no samples` });
        }
      }
      return out;
    };
    // Prometheus scrapes every 2 s (local) and rates look back 1 minute: give the last pages time to show
    let results = await check();
    for (const end = Date.now() + 30_000; results.some((r) => r.problem) && Date.now() < end; results = await check()) await new Promise((r) => setTimeout(r, 2000));

    const variables = await Promise.all(variableQueries(substitution, dashboards).map(async (v) => ({ title: `${v.dashboard} › variable $${v.variable}`, values: await count(v.expr) })));
    for (const v of variables) console.log(`grafana: ${v.title}: ${v.values} values`);
    for (const r of results) console.log(`grafana: ${r.title}: ${r.series} series${r.zero ? ` (0 by design, no samples of ${r.zero})` : ''}${r.problem ? ` DEAD: ${r.problem}` : ''}`);
    console.log(`grafana: ${results.length} panel queries of ${dashboards.length} dashboards checked, ${results.filter((r) => r.zero).length} showing an honest 0`);
    expect(results.filter((r) => r.problem).map((r) => `${r.title}: ${r.problem}`)).toEqual([]);
    expect(variables.filter((v) => v.values === 0).map((v) => v.title)).toEqual([]);
    // the check can fail: a query on a metric nobody exports has no series
    expect(await withData('sum(rate(istio_requests_total_misspelled[1m]))', false)).toBe(0);
  });
}
