// gRPC through the router over h2c: a real @grpc/grpc-js client and server, the router on a
// node:http2 server. Status and trailers pass through; the proxy's own failures reach the client
// as gRPC statuses.
import * as grpc from '@grpc/grpc-js';
import { encodeAny, type RouteConfiguration, TypeUrl } from '@weft/xds';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RouterServer, StandInCluster, StandInClusterManager, startRouter } from './test-support.ts';

interface Msg {
  text: string;
}

const codec = {
  serialize: (m: Msg) => Buffer.from(JSON.stringify(m)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Msg,
};

function method(service: string, name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/${service}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: codec.serialize,
    requestDeserialize: codec.deserialize,
    responseSerialize: codec.serialize,
    responseDeserialize: codec.deserialize,
  };
}

const echoService = {
  Echo: method('test.Echo', 'Echo', false, false),
  Fail: method('test.Echo', 'Fail', false, false),
  Count: method('test.Echo', 'Count', false, true),
  Chat: method('test.Echo', 'Chat', true, true),
} as const;

function routes(): RouteConfiguration {
  return {
    name: 'grpc',
    virtual_hosts: [
      {
        name: 'grpc',
        domains: ['*'],
        routes: [
          { name: 'echo', match: { prefix: '/test.Echo/' }, route: { cluster: 'grpc-backend', timeout: { seconds: 0 }, max_grpc_timeout: { seconds: 0 } } },
          {
            name: 'faulty',
            match: { prefix: '/test.Faulty/' },
            route: { cluster: 'grpc-backend' },
            typed_per_filter_config: {
              'envoy.filters.http.fault': encodeAny(TypeUrl.HttpFault, { abort: { grpc_status: 8, percentage: { numerator: 100, denominator: 'HUNDRED' } } }),
            },
          },
          { name: 'down', match: { prefix: '/test.Down/' }, route: { cluster: 'no-endpoints' } },
          {
            name: 'flaky',
            match: { prefix: '/test.Flaky/' },
            route: { cluster: 'grpc-backend', retry_policy: { retry_on: 'unavailable', num_retries: { value: 2 }, retry_back_off: { base_interval: { nanos: 1_000_000 } } } },
          },
          { name: 'slow', match: { prefix: '/test.Slow/' }, route: { cluster: 'grpc-backend', timeout: { seconds: 0 }, max_grpc_timeout: { seconds: 0, nanos: 100_000_000 } } },
        ],
      },
    ],
  };
}

let server: grpc.Server;
let router: RouterServer;
let clusters: StandInClusterManager;
let client: grpc.Client;

beforeAll(async () => {
  server = new grpc.Server();
  const impl = {
    Echo: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const md = new grpc.Metadata();
      md.set('x-trailer', 'kept');
      const delay = Number(call.metadata.get('x-delay-ms')[0] ?? 0);
      setTimeout(() => cb(null, { text: `echo: ${call.request.text} via ${String(call.metadata.get(':authority')[0] ?? call.getPath())}` }, md), delay);
    },
    Fail: (_call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const md = new grpc.Metadata();
      md.set('x-reason', 'missing-book');
      cb({ code: grpc.status.NOT_FOUND, details: 'no such book: 42 (ünïcode)', metadata: md });
    },
    Count: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 1; i <= 3; i++) call.write({ text: `${call.request.text}-${i}` });
      call.end();
    },
    Chat: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ text: `re: ${m.text}` }));
      call.on('end', () => call.end());
    },
  };
  server.addService(echoService, impl);
  let flakyCalls = 0;
  server.addService(
    { Echo: method('test.Flaky', 'Echo', false, false) },
    {
      Echo: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
        flakyCalls++;
        if (flakyCalls % 2 === 1) cb({ code: grpc.status.UNAVAILABLE, details: 'warming up' });
        else cb(null, { text: `flaky ok: ${call.request.text} on call ${flakyCalls}` });
      },
    },
  );
  // The same implementation answers the other service names the routes use.
  for (const svc of ['test.Faulty', 'test.Down', 'test.Slow']) {
    server.addService({ Echo: method(svc, 'Echo', false, false) }, { Echo: impl.Echo });
  }
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  clusters = new StandInClusterManager();
  clusters.add(new StandInCluster('grpc-backend', [`127.0.0.1:${port}`], true));
  clusters.add(new StandInCluster('no-endpoints', [], true));
  router = await startRouter(routes(), clusters, { h2: true });
  client = new grpc.Client(`127.0.0.1:${router.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await router?.close();
  await clusters?.close();
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
});

function unary(path: string, text: string, md = new grpc.Metadata(), deadlineMs?: number): Promise<{ err: grpc.ServiceError | null; res: Msg | undefined; trailers: grpc.Metadata | undefined }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.makeUnaryRequest(
      path,
      codec.serialize,
      codec.deserialize,
      { text },
      md,
      deadlineMs ? { deadline: Date.now() + deadlineMs } : {},
      (err: grpc.ServiceError | null, res?: Msg) => {
        // The status event (with trailers) fires before the callback settles in grpc-js; wait a tick.
        setImmediate(() => resolve({ err, res, trailers }));
      },
    );
    call.on('status', (s: grpc.StatusObject) => {
      trailers = s.metadata;
    });
  });
}

describe('gRPC through the router (h2c)', () => {
  it('passes a unary call through, with the server`s trailers', async () => {
    const rec = router.nextRecord();
    const { err, res, trailers } = await unary('/test.Echo/Echo', 'hello');
    expect(err).toBeNull();
    expect(res?.text).toMatch(/^echo: hello via/);
    expect(trailers?.get('x-trailer')).toEqual(['kept']);
    const r = await rec;
    expect(r).toMatchObject({ protocol: 'HTTP/2', responseCode: 200, routeName: 'echo', upstreamCluster: 'grpc-backend', attempts: 1 });
  });

  it('passes an error status, its message and trailing metadata through', async () => {
    const { err } = await unary('/test.Echo/Fail', 'x');
    expect(err?.code).toBe(grpc.status.NOT_FOUND);
    expect(err?.details).toBe('no such book: 42 (ünïcode)');
    expect(err?.metadata.get('x-reason')).toEqual(['missing-book']);
  });

  it('streams server-streaming and bidirectional calls', async () => {
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const s = client.makeServerStreamRequest('/test.Echo/Count', codec.serialize, codec.deserialize, { text: 'n' });
      s.on('data', (m: Msg) => got.push(m.text));
      s.on('error', reject);
      s.on('end', () => resolve());
    });
    expect(got).toEqual(['n-1', 'n-2', 'n-3']);

    // Each reply arrives before the next request is sent: the request body must flow before it ends.
    const chat = client.makeBidiStreamRequest('/test.Echo/Chat', codec.serialize, codec.deserialize);
    const replies: string[] = [];
    const next = () => new Promise<string>((resolve) => chat.once('data', (m: Msg) => resolve(m.text)));
    for (const t of ['one', 'two', 'three']) {
      const reply = next();
      chat.write({ text: t });
      replies.push(await reply);
    }
    chat.end();
    await new Promise((resolve) => chat.on('status', resolve));
    expect(replies).toEqual(['re: one', 're: two', 're: three']);
  });

  it('retries on grpc-status UNAVAILABLE (retry_on unavailable), replaying the streamed request', async () => {
    const rec = router.nextRecord();
    const { err, res } = await unary('/test.Flaky/Echo', 'again');
    expect(err).toBeNull();
    expect(res?.text).toBe('flaky ok: again on call 2');
    expect((await rec).attempts).toBe(2);
  });

  it('a fault abort with a gRPC status reaches the client as that status', async () => {
    const rec = router.nextRecord();
    const { err } = await unary('/test.Faulty/Echo', 'x');
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toBe('fault filter abort');
    expect([...(await rec).responseFlags]).toEqual(['FI']);
  });

  it('the proxy`s own failures become gRPC statuses: no healthy upstream is UNAVAILABLE, no route is UNIMPLEMENTED', async () => {
    const down = await unary('/test.Down/Echo', 'x');
    expect(down.err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(down.err?.details).toBe('no healthy upstream');
    const none = await unary('/test.Nowhere/Echo', 'x');
    expect(none.err?.code).toBe(grpc.status.UNIMPLEMENTED);
  });

  it('max_grpc_timeout caps the client`s deadline at the proxy: UNAVAILABLE `upstream request timeout`', async () => {
    const md = new grpc.Metadata();
    md.set('x-delay-ms', '1000');
    const rec = router.nextRecord();
    const started = performance.now();
    const { err } = await unary('/test.Slow/Echo', 'x', md, 5000);
    expect(err?.code).toBe(grpc.status.UNAVAILABLE);
    expect(err?.details).toBe('upstream request timeout');
    expect(performance.now() - started).toBeLessThan(800);
    expect([...(await rec).responseFlags]).toEqual(['UT']);
  });
});
