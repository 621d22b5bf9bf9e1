// gRPC's rich error model (google.rpc.Status in the `grpc-status-details-bin` trailer), next to the
// medaid trailers: what Java's StatusProto.fromThrowable, C#'s RpcException.GetRpcStatus() and Go's
// status.FromError read without knowing medaid's own trailers. The three messages are declared here
// as protobufjs JSON descriptors with the field numbers of googleapis' google/rpc/status.proto and
// google/rpc/error_details.proto, and google/protobuf/any.proto.
import protobuf from 'protobufjs';

/** The ErrorInfo domain: which service's codes `reason` holds. */
export const ERROR_DOMAIN = 'medaid.cn';

const root = protobuf.Root.fromJSON({
  // map fields: keyType (protobufjs's IMapField)

  nested: {
    google: {
      nested: {
        protobuf: { nested: { Any: { fields: { typeUrl: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } } } },
        rpc: {
          nested: {
            Status: {
              fields: {
                code: { type: 'int32', id: 1 },
                message: { type: 'string', id: 2 },
                details: { rule: 'repeated', type: 'google.protobuf.Any', id: 3 },
              },
            },
            ErrorInfo: {
              fields: {
                reason: { type: 'string', id: 1 },
                domain: { type: 'string', id: 2 },
                metadata: { keyType: 'string', type: 'string', id: 3 } as protobuf.IField,
              },
            },
            BadRequest: {
              fields: { fieldViolations: { rule: 'repeated', type: 'FieldViolation', id: 1 } },
              nested: { FieldViolation: { fields: { field: { type: 'string', id: 1 }, description: { type: 'string', id: 2 } } } },
            },
          },
        },
      },
    },
  },
});

export const RPC_STATUS = root.lookupType('google.rpc.Status');
export const ERROR_INFO = root.lookupType('google.rpc.ErrorInfo');
export const BAD_REQUEST = root.lookupType('google.rpc.BadRequest');

const any = (type: protobuf.Type, message: object) => ({
  typeUrl: `type.googleapis.com/${type.fullName.slice(1)}`,
  value: type.encode(type.create(message)).finish(),
});

/** The `grpc-status-details-bin` value of a failure: its status, its medaid code as ErrorInfo, its field problems as BadRequest. */
export function richStatus(
  code: number,
  message: string,
  medaidCode: string,
  details: ReadonlyArray<{ field: string; problem: string }>,
): Buffer {
  const parts = [any(ERROR_INFO, { reason: medaidCode, domain: ERROR_DOMAIN })];
  if (details.length > 0) {
    parts.push(any(BAD_REQUEST, { fieldViolations: details.map((d) => ({ field: d.field, description: d.problem })) }));
  }
  return Buffer.from(RPC_STATUS.encode(RPC_STATUS.create({ code, message, details: parts })).finish());
}
