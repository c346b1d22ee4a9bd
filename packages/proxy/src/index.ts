// @weft/proxy: Weft's data plane. Exports by name only; nothing here runs on import.

// Transparent capture (src/capture): the istio-iptables rules, weft-iptables, SO_ORIGINAL_DST.
export { type ApplyResult, applyCapture, type CaptureOptions, type CleanResult, cleanCapture, parseIptablesSave, routeCommands } from './capture/apply.ts';
export { type IptablesCliIo, runIptablesCli } from './capture/cli.ts';
export {
  type CaptureConfig,
  defaultCaptureConfig,
  type InterceptionMode,
  validateCaptureConfig,
} from './capture/config.ts';
export { getOriginalDst } from './capture/original-dst.ts';
export { buildCaptureRuleSet, buildCaptureRules, type CapturePayloads, type CaptureRuleSet, type Rule as CaptureRule, renderRestorePayload } from './capture/rules.ts';
export { type CommandResult, type CommandRunner, systemRunner } from './capture/system.ts';
// Test helpers for transparent capture: network-namespace pods, a minimal capturing sidecar, an echo app.
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
