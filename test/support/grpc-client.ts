// A client of medaid's SettlementService for the tests: @grpc/grpc-js with @grpc/proto-loader loading
// the service's own .proto (or a variant of it), answering each call with its value or its failure
// (status, medaid code and details, and the rich status trailer).
import * as grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { ROOT } from './service.js';

type Obj = Record<string, any>;
export const PROTO = join(ROOT, 'proto/medaid/settlement/v1/settlement.proto');
/** How the client decodes: camelCase names, int64 as numbers (every fen is a safe integer). */
const LOADER = { longs: Number, defaults: true, oneofs: false };
const CALL_DEADLINE_MS = 10_000;

export type Reply =
  | { ok: true; value: Obj; headers: grpc.Metadata | undefined }
  | {
      ok: false;
      status: grpc.status;
      message: string;
      code: string | undefined;
      details: Array<{ field: string; problem: string }>;
      rich: Buffer | undefined;
    };

/** A client of SettlementService; `protoFile` lets a test speak with a .proto that differs from the service's; `credentials`: TLS. */
export function connect(port: number, protoFile = PROTO, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
  const Service = (grpc.loadPackageDefinition(protoLoader.loadSync(protoFile, LOADER)) as any).medaid.settlement.v1
    .SettlementService as typeof grpc.Client;
  const client = new Service(`127.0.0.1:${port}`, credentials);
  const call = (method: 'Settle' | 'Preview' | 'Reverse' | 'Get', request: Obj, metadata = new grpc.Metadata()) =>
    new Promise<Reply>((resolve) => {
      let headers: grpc.Metadata | undefined;
      const unary = (client as any)[method](
        request,
        metadata,
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (error: grpc.ServiceError | null, value: Obj) => {
          if (error === null) return resolve({ ok: true, value, headers });
          const text = (key: string) => error.metadata?.get(key)[0]?.toString();
          resolve({
            ok: false,
            status: error.code,
            message: error.details,
            code: text('medaid-error-code'),
            details: JSON.parse(text('medaid-error-details') ?? '[]'),
            rich: error.metadata?.get('grpc-status-details-bin')[0] as Buffer | undefined,
          });
        },
      );
      unary.on('metadata', (m: grpc.Metadata) => (headers = m));
    });
  return { call, close: () => client.close() };
}
export type Client = ReturnType<typeof connect>;
