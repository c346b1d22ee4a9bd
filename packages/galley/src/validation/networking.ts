// Semantic rules for networking.istio.io: VirtualService, DestinationRule, Gateway, ServiceEntry,
// WorkloadEntry and Sidecar. They follow Istio's webhook validation (pkg/config/validation) and the
// CEL rules of Istio's CRDs; structural checks (types, enums, required fields) are the loader's.
// The rules live in ./networking/, one file per kind plus the rules they share.
import type { KindValidator } from './context.ts';
import { destinationRuleValidator } from './networking/destination-rule.ts';
import { gatewayValidator } from './networking/gateway.ts';
import { serviceEntryValidator, workloadEntryValidator } from './networking/service-entry.ts';
import { sidecarValidator } from './networking/sidecar.ts';
import { virtualServiceValidator } from './networking/virtual-service.ts';

export const networkingValidators: readonly KindValidator[] = [
  virtualServiceValidator,
  destinationRuleValidator,
  gatewayValidator,
  serviceEntryValidator,
  workloadEntryValidator,
  sidecarValidator,
];
