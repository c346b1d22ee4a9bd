// Where a service finds its peers, from the environment as the original services read it:
// `http://<NAME>_HOSTNAME[.SERVICES_DOMAIN]:<NAME>_SERVICE_PORT`, by default `http://details:9080`,
// `http://reviews:9080`, `http://ratings:9080`.
export interface Upstreams {
  /** Base URLs, without a trailing slash. */
  details: string;
  reviews: string;
  ratings: string;
}

export const defaultUpstreams: Upstreams = { details: 'http://details:9080', reviews: 'http://reviews:9080', ratings: 'http://ratings:9080' };

export function upstreamsFromEnv(env: NodeJS.ProcessEnv): Upstreams {
  const domain = env.SERVICES_DOMAIN ? `.${env.SERVICES_DOMAIN}` : '';
  const one = (name: 'details' | 'reviews' | 'ratings') => {
    const upper = name.toUpperCase();
    const host = env[`${upper}_HOSTNAME`] || name;
    const port = env[`${upper}_SERVICE_PORT`] || '9080';
    return `http://${host}${domain}:${port}`;
  };
  return { details: one('details'), reviews: one('reviews'), ratings: one('ratings') };
}

/** Checks that a base URL is an http URL; throws an Error saying what is wrong. */
export function checkUpstreams(u: Upstreams): void {
  for (const [name, value] of Object.entries(u)) {
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new Error(`the ${name} service address ${JSON.stringify(value)} is not a URL`);
    }
    if (parsed.protocol !== 'http:') throw new Error(`the ${name} service address ${JSON.stringify(value)} must be http://`);
  }
}
