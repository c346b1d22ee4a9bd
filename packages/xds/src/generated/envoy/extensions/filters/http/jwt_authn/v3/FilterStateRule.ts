// Original file: envoy-api/envoy/extensions/filters/http/jwt_authn/v3/config.proto

import type { JwtRequirement as _envoy_extensions_filters_http_jwt_authn_v3_JwtRequirement, JwtRequirement__Output as _envoy_extensions_filters_http_jwt_authn_v3_JwtRequirement__Output } from '../../../../../../envoy/extensions/filters/http/jwt_authn/v3/JwtRequirement.ts';

export interface FilterStateRule {
  'name'?: (string);
  'requires'?: ({[key: string]: _envoy_extensions_filters_http_jwt_authn_v3_JwtRequirement});
}

export interface FilterStateRule__Output {
  'name': (string);
  'requires': ({[key: string]: _envoy_extensions_filters_http_jwt_authn_v3_JwtRequirement__Output});
}
