// Where an object in a watched config directory came from. `weftctl apply` and `weftctl up` write
// each object to a file of its own (named by kind, namespace and name) whose first line says what
// it is and where it was read: `# virtualservice.networking.istio.io/reviews in default, from
// /home/u/virtual-service-reviews-test-v2.yaml:1`. Written and read here only.

/** The header line (with its newline) for an object written from `origin` (`file.yaml:12`, or a phrase). */
export function originHeader(object: string, namespace: string | undefined, origin: string): string {
  return `# ${object} in ${namespace || 'the cluster'}, from ${origin}\n`;
}

const header = /^# (\S+) in .*, from (.*)$/;

/** The object and origin a file's first line names; undefined for a file without the header. */
export function parseOriginHeader(firstLine: string): { object: string; origin: string } | undefined {
  const m = header.exec(firstLine);
  return m ? { object: m[1]!, origin: m[2]! } : undefined;
}

/** An origin that is a file and line (`/path/file.yaml:12`) as such; undefined for a phrase. */
export function originLocation(origin: string): { file: string; line: number } | undefined {
  const m = /^(.+):(\d+)$/.exec(origin);
  return m ? { file: m[1]!, line: Number(m[2]) } : undefined;
}
