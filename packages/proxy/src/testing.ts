// @weft/proxy's test helpers (DESIGN.md §2: test helpers come from a `testing` entry, so that the
// proxy's runtime never loads them or @weft/testing, a devDependency the images do not carry).
// Transparent capture: network-namespace pods, a minimal capturing sidecar, an echo app.
export { type CaptureProxy, type CaptureProxyOptions, startCaptureProxy } from './capture/testing/capture-proxy.ts';
export { startEchoApp } from './capture/testing/echo-app.ts';
export {
  collectJsonLines,
  createNetnsLab,
  type ExecOptions as NetnsExecOptions,
  type NetnsLab,
  type NetnsPod,
  netnsSkipReason,
  type RunResult as NetnsRunResult,
  waitForLine,
} from './capture/testing/netns.ts';
// Tracing: an OTLP receiver that keeps the spans it gets.
export { type OtlpReceiver, type ReceivedSpan, type SpanKindName, startOtlpReceiver } from './telemetry/testing/otlp-receiver.ts';
