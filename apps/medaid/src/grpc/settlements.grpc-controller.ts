// The gRPC face of the settlement use cases (proto/medaid/settlement/v1/settlement.proto). It is
// the HTTP controller's twin: the same DTO validation at the edge, the same commands on the same
// CommandBus, the same results. Only the envelope differs: `created` travels in the result instead
// of as 201/200, and failures become gRPC statuses (grpc-errors.ts).
import { Controller, UseFilters } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { GrpcMethod } from '@nestjs/microservices';
import { randomUUID } from 'node:crypto';
import { ID_PATTERN } from '#domain';
import type { SettlementResult } from '#domain';
import { authenticate, callers, resolveActor } from '../http/actor.js';
import { isUnproven } from '../http/identity.js';
import type { PeerCertificate } from '../http/identity.js';
import { authorize } from '../http/access.js';
import { IsIdentifier, invalid, validateInput } from '../shared/validation.js';
import type { Validated } from '../shared/validation.js';
import type { CommandMeta } from '../shared/writer.js';
import { ReverseSettlementDto, toDischarge } from '../commands/settlements/settlement.dto.js';
import { PreviewDischarge, ReverseSettlement, SettleDischarge } from '../commands/settlements/settlement.handlers.js';
import { GetVisit } from '../queries/query.handlers.js';
import { withApiKey } from '../shared/command-answers.js';
import { GrpcErrorFilter, GrpcRejected, notFound, unwrap } from './grpc-errors.js';
import { MalformedRequest } from './wire.js';
import { AccessLog } from '../access-log/access-log.js';

export const SERVICE = 'SettlementService';

/** The visit a `Get` reads; over HTTP the same two values are path segments. */
export class VisitRefDto {
  @IsIdentifier() hospitalId!: string;
  @IsIdentifier() visitId!: string;
}

/** The call's metadata, as far as this controller reads it (grpc-js's Metadata has this method). */
export interface CallMetadata {
  get(key: string): Array<string | Buffer>;
}

type Settlement = SettlementResult & { created: boolean };
type HistoryEntry = SettlementResult & { settledAtMs: number; reversal: { reason: string; reversedAtMs: number } | null };

@Controller()
@UseFilters(GrpcErrorFilter)
export class SettlementsGrpcController {
  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
    private readonly accessLog: AccessLog,
  ) {}

  @GrpcMethod(SERVICE, 'Settle')
  async settle(request: unknown, metadata: CallMetadata, call?: GrpcCall): Promise<Settlement> {
    const meta = unwrap(await keyedMeta(metadata, 'Settle', request, call));
    const discharge = unwrap(toDischarge(unwrap(received(request))));
    const outcome = unwrap(await this.bus.execute(new SettleDischarge(discharge, meta)));
    return { ...outcome.result, created: outcome.created };
  }

  @GrpcMethod(SERVICE, 'Preview')
  async preview(request: unknown, metadata: CallMetadata, call?: GrpcCall): Promise<Settlement> {
    await metaOf(metadata, 'Preview', request, call);
    const discharge = unwrap(toDischarge(unwrap(received(request))));
    return { ...unwrap(await this.bus.execute(new PreviewDischarge(discharge))), created: false };
  }

  @GrpcMethod(SERVICE, 'Reverse')
  async reverse(request: unknown, metadata: CallMetadata, call?: GrpcCall): Promise<Settlement> {
    const meta = unwrap(await keyedMeta(metadata, 'Reverse', request, call));
    const { hospitalId, visitId, reason } = unwrap(validateInput(ReverseSettlementDto, unwrap(received(request))));
    return { ...unwrap(await this.bus.execute(new ReverseSettlement(hospitalId, visitId, reason, meta))), created: false };
  }

  @GrpcMethod(SERVICE, 'Get')
  async get(request: unknown, metadata: CallMetadata, call?: GrpcCall) {
    const { actor, correlationId } = await metaOf(metadata, 'Get', request, call);
    const { hospitalId, visitId } = unwrap(validateInput(VisitRefDto, unwrap(received(request))));
    const view = await this.queries.execute(new GetVisit(hospitalId, visitId));
    if (view === null) throw notFound(`settlement of visit ${hospitalId}/${visitId}`);
    const personId = (view.current ?? view.history[0])?.personId;
    this.accessLog.record({
      atMs: Date.now(),
      actorKind: actor.kind,
      actorId: actor.id,
      action: `grpc ${SERVICE}/Get`,
      personId: typeof personId === 'string' ? personId : null,
      subject: `settlement ${hospitalId}/${visitId}`,
      from: call?.getPeer() ?? 'grpc',
      requestId: correlationId,
    });
    return { current: visitSettlement(view.current), history: view.history.map(visitSettlement) };
  }
}

/** A request the wire scan refused (wire.ts) is VALIDATION_FAILED before any DTO sees it. */
function received(request: unknown): Validated<unknown> {
  return request instanceof MalformedRequest ? invalid(request.details) : { ok: true, value: request };
}

/** The proto nests the settlement; the HTTP answer spreads it next to settledAtMs and reversal. */
function visitSettlement({ settledAtMs, reversal, ...settlement }: HistoryEntry) {
  return { settlement: { ...settlement, created: false }, settledAtMs, reversal };
}

/** The call's metadata with its `idempotency-key`, in the same key space as HTTP's Idempotency-Key. */
async function keyedMeta(metadata: CallMetadata, method: string, request: unknown, call: GrpcCall | undefined) {
  const [raw] = metadata.get('idempotency-key');
  return withApiKey(
    await metaOf(metadata, method, request, call),
    raw === undefined ? undefined : String(raw),
    '(metadata idempotency-key)',
  );
}

/** What Nest hands a handler as its third argument: grpc-js's call. */
interface GrpcCall {
  getPeer(): string;
  getAuthContext?(): { sslPeerCertificate?: { subject?: Record<string, string | string[]> } } | null;
}

/**
 * The call's verified client certificate: grpc-js shows one only when it chains to the client CA
 * (an untrusted one looks like none — then the call needs a token, or is refused in the handshake
 * with "clientCertificates": "required").
 */
function peerOf(call: GrpcCall | undefined): PeerCertificate | null {
  const cert = call?.getAuthContext?.()?.sslPeerCertificate;
  return cert === undefined ? null : { authorized: true, subject: cert.subject ?? {} };
}

/**
 * Actor and correlation id of a call, decided as for HTTP requests: the `authorization` metadata
 * (`Bearer <token or JWT>`; one that proves nothing is UNAUTHENTICATED) or the client certificate, x-medaid-client, x-request-id; then the
 * method's access rule (http/access.ts), the hospital's scope read from the request.
 */
async function metaOf(metadata: CallMetadata, method: string, request: unknown, call: GrpcCall | undefined): Promise<CommandMeta> {
  const text = (key: string) => {
    const value = metadata.get(key)[0];
    return typeof value === 'string' ? value : undefined;
  };
  const authorization = metadata.get('authorization').length > 0 ? (text('authorization') ?? '') : undefined;
  const authenticated = await authenticate(callers.identity, authorization, peerOf(call));
  if (authenticated !== null && isUnproven(authenticated))
    throw new GrpcRejected({
      code: authenticated.code,
      message: authenticated.message.replace('Authorization header', 'authorization metadata'),
      details: [],
    });
  const actor = authenticated ?? resolveActor({ headers: { 'x-medaid-client': text('x-medaid-client') } });
  const refusal = authorize(`grpc ${SERVICE}/${method}`, actor, callers.credentials, () =>
    request !== null && typeof request === 'object' ? (request as { hospitalId?: unknown }).hospitalId : undefined,
  );
  if (refusal !== null)
    throw new GrpcRejected({
      code: refusal.code,
      message: refusal.message,
      details: refusal.field === undefined ? [] : [{ field: refusal.field, problem: refusal.message }],
    });
  const requestId = text('x-request-id');
  return { actor, correlationId: requestId !== undefined && ID_PATTERN.test(requestId) ? requestId : randomUUID() };
}
