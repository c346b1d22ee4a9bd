export const proxyConfigKinds = ['listeners', 'routes', 'clusters', 'endpoints', 'secret'] as const;
export async function proxyConfig(_o: unknown, _io: unknown): Promise<number> {
  return 1;
}
