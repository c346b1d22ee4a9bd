// Original file: envoy-api/envoy/config/accesslog/v3/accesslog.proto


export interface TraceableFilter {
}

export interface TraceableFilter__Output {
}
