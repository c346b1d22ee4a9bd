// Original file: envoy-api/envoy/extensions/filters/network/rbac/v3/rbac.proto

import type { RBAC as _envoy_config_rbac_v3_RBAC, RBAC__Output as _envoy_config_rbac_v3_RBAC__Output } from '../../../../../../envoy/config/rbac/v3/RBAC.ts';
import type { Matcher as _xds_type_matcher_v3_Matcher, Matcher__Output as _xds_type_matcher_v3_Matcher__Output } from '../../../../../../xds/type/matcher/v3/Matcher.ts';

// Original file: envoy-api/envoy/extensions/filters/network/rbac/v3/rbac.proto

export const _envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType = {
  ONE_TIME_ON_FIRST_BYTE: 'ONE_TIME_ON_FIRST_BYTE',
  CONTINUOUS: 'CONTINUOUS',
} as const;

export type _envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType =
  | 'ONE_TIME_ON_FIRST_BYTE'
  | 0
  | 'CONTINUOUS'
  | 1

export type _envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType__Output = typeof _envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType[keyof typeof _envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType]

export interface RBAC {
  'rules'?: (_envoy_config_rbac_v3_RBAC | null);
  'shadow_rules'?: (_envoy_config_rbac_v3_RBAC | null);
  'stat_prefix'?: (string);
  'enforcement_type'?: (_envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType);
  'shadow_rules_stat_prefix'?: (string);
  'matcher'?: (_xds_type_matcher_v3_Matcher | null);
  'shadow_matcher'?: (_xds_type_matcher_v3_Matcher | null);
}

export interface RBAC__Output {
  'rules': (_envoy_config_rbac_v3_RBAC__Output | null);
  'shadow_rules': (_envoy_config_rbac_v3_RBAC__Output | null);
  'stat_prefix': (string);
  'enforcement_type': (_envoy_extensions_filters_network_rbac_v3_RBAC_EnforcementType__Output);
  'shadow_rules_stat_prefix': (string);
  'matcher': (_xds_type_matcher_v3_Matcher__Output | null);
  'shadow_matcher': (_xds_type_matcher_v3_Matcher__Output | null);
}
