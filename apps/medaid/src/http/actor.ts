// Who is calling. Today every caller is anonymous: authentication is not built yet. This is the
// single place that decides the actor; controllers pass it into commands, handlers record it in
// every event's metadata. Adding hospital / admin / auditor credentials means replacing
// resolveActor (and adding a guard), not touching a handler.
import { ExecutionContext, createParamDecorator } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Actor, CommandMeta } from '../shared/writer.js';

interface RequestLike { id?: string; headers: Record<string, string | string[] | undefined> }

export function resolveActor(request: RequestLike): Actor {
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
