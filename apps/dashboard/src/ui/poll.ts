// Polling as the views use it: one request at a time (the next starts `intervalMs` after the last
// ended, so a slow server is not piled on), the last good data kept when a request fails.
import { useEffect, useState } from 'preact/hooks';
import { getJson } from './api.ts';

export interface Polled<T> {
  data?: T;
  /** The last request's error; cleared by the next success. */
  error?: string;
  /** Date.now() of the last success. */
  at?: number;
}

export function usePoll<T>(path: string | undefined, intervalMs: number): Polled<T> {
  const [state, setState] = useState<Polled<T>>({});
  useEffect(() => {
    setState({});
    if (!path) return;
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const tick = async () => {
      try {
        const data = await getJson<T>(path);
        if (!stopped) setState({ data, at: Date.now() });
      } catch (e) {
        if (!stopped) setState((prev) => ({ ...prev, error: (e as Error).message }));
      }
      if (!stopped) timer = setTimeout(tick, intervalMs);
    };
    void tick();
    return () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    };
  }, [path, intervalMs]);
  return state;
}
