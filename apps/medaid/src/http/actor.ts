// Who is calling: the single place that decides the actor. A request with `Authorization: Bearer
// <credential>` is the actor a token of the file or a verified JWT names; one without it over
// mutual TLS is its client certificate's mapped subject (identity.ts); any other request is
// anonymous, which only a local trial (no credentials configured) lets through, on the routes
// access.ts marks for it. A credential that proves nothing is refused with 401 before
// any route sees it; then every route's access rule (access.ts) is applied before its handler.
// Controllers pass the actor into commands; handlers record it in every event's metadata.
import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply } from 'fastify';
import { randomUUID } from 'node:crypto';
import { Actor, ActorKind, CommandMeta } from '../shared/writer.js';
import { TLSSocket } from 'node:tls';
import { isUnproven } from './identity.js';
import type { Credentials, PeerCertificate, Unproven } from './identity.js';
import { authorize, ruleOf } from './access.js';
import type { Refusal } from './access.js';

interface RequestLike {
  id?: string;
  headers: Record<string, string | string[] | undefined>;
  medaidActor?: Actor;
}

/**
 * The actor a request's credentials name: null for none, Unproven for an Authorization header or a
 * client certificate that proves nothing (identity.ts decides; with no credentials configured,
 * every token is unknown).
 */
export async function authenticate(
  credentials: Credentials | null,
  authorization: string | string[] | undefined,
  peer: PeerCertificate | null = null,
): Promise<Actor | null | Unproven> {
  if (credentials === null) {
    if (authorization === undefined) return null;
    return { status: 401, code: 'UNAUTHENTICATED', message: 'this service accepts no tokens (it was started without --auth)' };
  }
  if (Array.isArray(authorization)) return { status: 401, code: 'UNAUTHENTICATED', message: 'send one Authorization header' };
  return credentials.authenticate(authorization, peer);
}

/** The client certificate of an HTTPS request, or null when none was presented (or the connection is plain). */
function peerOf(socket: unknown): PeerCertificate | null {
  if (!(socket instanceof TLSSocket)) return null;
  const cert = socket.getPeerCertificate();
  if (cert === null || typeof cert !== 'object' || Object.keys(cert).length === 0) return null;
  return {
    authorized: socket.authorized,
    ...(socket.authorizationError === undefined ? {} : { error: String(socket.authorizationError) }),
    subject: (cert.subject ?? {}) as unknown as PeerCertificate['subject'],
  };
}

/**
 * Authenticates every HTTP request before routing (an invalid credential is answered 401
 * UNAUTHENTICATED here, on every route alike), then, once the body is parsed, applies the route's
 * access rule (access.ts): 401 without a needed token, 403 for a caller of another kind or a
 * hospital acting on another hospital's visit. Nothing of a refused request reaches a handler.
 */
export function installAuthentication(app: NestFastifyApplication, configured: Credentials | null): void {
  const fastify = app.getHttpAdapter().getInstance();
  const credentials = configured !== null;
  callers.identity = configured;
  callers.credentials = credentials;
  const refuse = async (reply: FastifyReply, request: unknown, r: Refusal | Unproven) => {
    (request as { medaidOutcome?: string }).medaidOutcome = r.code;
    if (r.status === 401) reply.header('www-authenticate', 'Bearer realm="medaid"');
    if (r.status === 503) reply.header('retry-after', '5');
    await reply
      .code(r.status)
      .header('content-type', 'application/json; charset=utf-8')
      .send({
        code: r.code,
        message: r.message,
        details: 'field' in r && r.field !== undefined ? [{ field: r.field, problem: r.message }] : [],
      });
    return reply;
  };
  fastify.addHook('onRequest', async (request, reply) => {
    const actor = await authenticate(configured, request.headers.authorization, peerOf(request.raw.socket));
    if (actor !== null && isUnproven(actor)) return refuse(reply, request, actor);
    if (actor !== null) (request as unknown as RequestLike).medaidActor = actor;
    const route = request.routeOptions.url;
    // A path that matches no route: with credentials, only an authenticated caller learns that.
    if (route === undefined)
      return credentials && actor === null
        ? refuse(reply, request, { status: 401, code: 'UNAUTHENTICATED', message: 'send "Authorization: Bearer <token>"' })
        : undefined; // 404, answered by the not-found handler
    // The role (and a hospital named in the path) before the body is read: a refused caller learns
    // nothing from how its body would have been taken.
    const refusal = authorize(`${request.method} ${route}`, resolveActor(request as unknown as RequestLike), credentials, () => {
      const params = request.params as { hospitalId?: unknown } | null | undefined;
      return params?.hospitalId;
    });
    return refusal === null ? undefined : refuse(reply, request, refusal);
  });
  // A hospital named in the body (settle, preview): checked once the body is parsed.
  fastify.addHook('preHandler', async (request, reply) => {
    const route = request.routeOptions.url;
    if (route === undefined || ruleOf(`${request.method} ${route}`)?.hospital !== 'body') return undefined;
    const refusal = authorize(`${request.method} ${route}`, resolveActor(request as unknown as RequestLike), credentials, () =>
      request.body !== null && typeof request.body === 'object' ? (request.body as { hospitalId?: unknown }).hospitalId : undefined,
    );
    return refusal === null ? undefined : refuse(reply, request, refusal);
  });
}

/** The credentials the service started with, for the gRPC controller (set once, by installAuthentication). */
export const callers: { identity: Credentials | null; credentials: boolean } = { identity: null, credentials: false };

export function resolveActor(request: RequestLike): Actor {
  if (request.medaidActor !== undefined) return request.medaidActor;
  // The x-medaid-client header is an unverified label that helps operators read the log.
  const label = request.headers['x-medaid-client'];
  const id = typeof label === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(label) ? label : 'anonymous';
  return { kind: 'anonymous', id };
}

/** Injects the command metadata (actor and correlation id) of the current request. */
export const Meta = createParamDecorator((_: unknown, ctx: ExecutionContext): CommandMeta => {
  const request = ctx.switchToHttp().getRequest<RequestLike>();
  return { actor: resolveActor(request), correlationId: request.id ?? randomUUID() };
});
