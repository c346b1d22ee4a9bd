/** Stable error codes for failures inside the platform; each maps to a gRPC and an HTTP status. */
export const errorCodes = {
  INVALID_ARGUMENT: { grpc: 3, http: 400 },
  NOT_FOUND: { grpc: 5, http: 404 },
  ALREADY_EXISTS: { grpc: 6, http: 409 },
  PERMISSION_DENIED: { grpc: 7, http: 403 },
  FAILED_PRECONDITION: { grpc: 9, http: 412 },
  UNAUTHENTICATED: { grpc: 16, http: 401 },
  UNAVAILABLE: { grpc: 14, http: 503 },
  INTERNAL: { grpc: 13, http: 500 },
} as const;
export type WeftErrorCode = keyof typeof errorCodes;

export class WeftError extends Error {
  readonly code: WeftErrorCode;
  constructor(code: WeftErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WeftError';
    this.code = code;
  }
  get grpcStatus(): number {
    return errorCodes[this.code].grpc;
  }
  get httpStatus(): number {
    return errorCodes[this.code].http;
  }
}
