// Original file: envoy-api/envoy/extensions/filters/common/fault/v3/fault.proto

import type { FractionalPercent as _envoy_type_v3_FractionalPercent, FractionalPercent__Output as _envoy_type_v3_FractionalPercent__Output } from '../../../../../../envoy/type/v3/FractionalPercent.ts';
import type { Long } from '@grpc/proto-loader';

export interface _envoy_extensions_filters_common_fault_v3_FaultRateLimit_FixedLimit {
  'limit_kbps'?: (number | string | Long);
}

export interface _envoy_extensions_filters_common_fault_v3_FaultRateLimit_FixedLimit__Output {
  'limit_kbps': (string);
}

export interface _envoy_extensions_filters_common_fault_v3_FaultRateLimit_HeaderLimit {
}

export interface _envoy_extensions_filters_common_fault_v3_FaultRateLimit_HeaderLimit__Output {
}

export interface FaultRateLimit {
  'fixed_limit'?: (_envoy_extensions_filters_common_fault_v3_FaultRateLimit_FixedLimit | null);
  'percentage'?: (_envoy_type_v3_FractionalPercent | null);
  'header_limit'?: (_envoy_extensions_filters_common_fault_v3_FaultRateLimit_HeaderLimit | null);
  'limit_type'?: "fixed_limit"|"header_limit";
}

export interface FaultRateLimit__Output {
  'fixed_limit'?: (_envoy_extensions_filters_common_fault_v3_FaultRateLimit_FixedLimit__Output | null);
  'percentage': (_envoy_type_v3_FractionalPercent__Output | null);
  'header_limit'?: (_envoy_extensions_filters_common_fault_v3_FaultRateLimit_HeaderLimit__Output | null);
  'limit_type'?: "fixed_limit"|"header_limit";
}
