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
    // Prometheus sees a counter's rate only from an increment after it has scraped the series once,
    // and a series is born at its first increment: what is to show as a rate happens in two steps,
    // with a scrape of every target in between (a fresh mesh's first change shows no push time in
    // Grafana either).
    const scrapedSince = async (t: number) => {
      for (const end = Date.now() + 30_000; ((await prom.value('min(timestamp(up))')) ?? 0) <= t && Date.now() < end; ) await new Promise((r) => setTimeout(r, 500));
    };
    // Changes to converge on (pushes, push time, convergence): all-v1, then reviews-test-v2 as the tutorial goes.
    await d.apply([networking('destination-rule-all.yaml')]);
    await d.apply([networking('virtual-service-all-v1.yaml')]);
    await scrapedSince(Date.now() / 1000);
    await d.apply([networking('virtual-service-reviews-test-v2.yaml')]);
    // Traffic through every service: jason's pages go to reviews v2, which calls ratings; the others to v1.
    const jason = new PageUser(d.productpageUrl);
    await jason.login('jason');
    const anonymous = new PageUser(d.productpageUrl);
    await jason.loadMany(2);
    await anonymous.loadMany(2);
    await scrapedSince(Date.now() / 1000);
    await jason.loadMany(10);
    await anonymous.loadMany(20);

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
