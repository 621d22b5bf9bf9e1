// Who is calling: the single place that decides the actor. A request with `Authorization: Bearer
// <token>` is the actor the token belongs to (http/auth.ts); a request without that header is
// anonymous, as every caller was before tokens existed, so the open routes stay open. A header
// with an unknown or malformed token is refused with 401 before any route sees it. Controllers pass
// the actor into commands; handlers record it in every event's metadata. Routes that need a role
// say so with requireRole.
import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { Actor, ActorKind, CommandMeta } from '../shared/writer.js';
import type { TokenTable } from './auth.js';
import { forbidden, unauthenticated } from './errors.js';

interface RequestLike {
  id?: string;
  headers: Record<string, string | string[] | undefined>;
  medaidActor?: Actor;
}

const BEARER = /^Bearer +([\x21-\x7e]+) *$/i;

/**
 * The actor an Authorization header names: null without one, 'invalid' when it is not
 * `Bearer <token>` with a token of the table (with no table, every token is unknown).
 */
export function authenticate(table: TokenTable | null, authorization: string | string[] | undefined): Actor | null | 'invalid' {
  if (authorization === undefined) return null;
  const match = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
  if (match === null || table === null) return 'invalid';
  return table.authenticate(match[1]!) ?? 'invalid';
}

/**
 * Authenticates every HTTP request before routing: the actor is kept on the request for @Meta and
 * requireRole; an invalid credential is answered 401 UNAUTHENTICATED here, on every route alike.
 */
export function installAuthentication(app: NestFastifyApplication, table: TokenTable | null): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onRequest', async (request, reply) => {
    const actor = authenticate(table, request.headers.authorization);
    if (actor === 'invalid') {
      (request as unknown as { medaidOutcome?: string }).medaidOutcome = 'UNAUTHENTICATED';
      const message =
        table === null
          ? 'this service accepts no tokens (it was started without --auth)'
          : 'the Authorization header must be "Bearer <token>" with a valid token';
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer realm="medaid"')
        .header('content-type', 'application/json; charset=utf-8')
        .send({ code: 'UNAUTHENTICATED', message, details: [] });
      return reply;
    }
    if (actor !== null) (request as unknown as RequestLike).medaidActor = actor;
    return undefined;
  });
}

export function resolveActor(request: RequestLike): Actor {
  if (request.medaidActor !== undefined) return request.medaidActor;
  // The x-medaid-client header is an unverified label that helps operators read the log.
  const label = request.headers['x-medaid-client'];
  const id = typeof label === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(label) ? label : 'anonymous';
  return { kind: 'anonymous', id };
}

/** Refuses an actor of another kind: 401 when anonymous (no token), 403 when authenticated as someone else. */
export function requireRole(actor: Actor, ...kinds: ActorKind[]): void {
  if (kinds.includes(actor.kind)) return;
  if (actor.kind === 'anonymous')
    throw unauthenticated(`this route needs a token of kind ${kinds.join(' or ')}: send "Authorization: Bearer <token>"`);
  throw forbidden(`a ${actor.kind} may not do this; it needs a token of kind ${kinds.join(' or ')}`);
}

/** Injects the command metadata (actor and correlation id) of the current request. */
export const Meta = createParamDecorator((_: unknown, ctx: ExecutionContext): CommandMeta => {
  const request = ctx.switchToHttp().getRequest<RequestLike>();
  return { actor: resolveActor(request), correlationId: request.id ?? randomUUID() };
});
