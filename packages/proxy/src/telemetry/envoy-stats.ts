// The admin /stats counters in Prometheus form, named as Envoy's Prometheus output names them
// (tag extraction: `cluster.<name>.<stat>` becomes `envoy_cluster_<stat>{envoy_cluster_name="<name>"}`).

const listenerKinds: Record<string, { prefix: string; label: string }> = {
  http: { prefix: 'envoy_http_', label: 'envoy_http_conn_manager_prefix' },
  tcp: { prefix: 'envoy_tcp_', label: 'envoy_tcp_prefix' },
};

function sanitize(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_');
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Stats Envoy keeps as gauges (the rest are counters). */
function isGauge(stat: string): boolean {
  return stat.endsWith('_active') || stat.endsWith('connected') || stat.endsWith('_state');
}

interface Sample {
  labels: string;
  value: number;
}

/** Prometheus text for `name: value` stats as the admin /stats page lists them. */
export function envoyStatsText(entries: Iterable<readonly [string, number]>): string {
  const families = new Map<string, { gauge: boolean; samples: Sample[] }>();
  const add = (name: string, stat: string, labels: string, value: number) => {
    let f = families.get(name);
    if (!f) {
      f = { gauge: isGauge(stat), samples: [] };
      families.set(name, f);
    }
    f.samples.push({ labels, value });
  };
  for (const [name, value] of entries) {
    if (name.startsWith('cluster.')) {
      const dot = name.lastIndexOf('.');
      const stat = name.slice(dot + 1);
      add(`envoy_cluster_${sanitize(stat)}`, stat, `envoy_cluster_name="${escapeLabel(name.slice(8, dot))}"`, value);
    } else if (name.startsWith('listener.')) {
      const dot = name.lastIndexOf('.');
      const stat = name.slice(dot + 1);
      const before = name.lastIndexOf('.', dot - 1);
      const kind = name.slice(before + 1, dot);
      const k = listenerKinds[kind];
      if (k) add(`${k.prefix}${sanitize(stat)}`, stat, `${k.label}="${escapeLabel(name.slice(9, before))}"`, value);
      else if (kind === 'response_flag') add('envoy_listener_response_flags', 'response_flags', `envoy_listener_address="${escapeLabel(name.slice(9, before))}",response_flag="${escapeLabel(stat)}"`, value);
      else add(`envoy_listener_${sanitize(stat)}`, stat, `envoy_listener_address="${escapeLabel(name.slice(9, dot))}"`, value);
    } else {
      add(`envoy_${sanitize(name)}`, name, '', value);
    }
  }
  const lines: string[] = [];
  for (const [name, f] of [...families].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    lines.push(`# TYPE ${name} ${f.gauge ? 'gauge' : 'counter'}`);
    for (const s of f.samples) lines.push(s.labels ? `${name}{${s.labels}} ${s.value}` : `${name} ${s.value}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}
