// Records each answered read of personal data in the access log: the routes whose access rule
// says `personal` (http/access.ts), once their answer is about to be sent with 200. What the
// entry names: the person of the URL, the person of the settlement answered, or, for a list, the
// query that selected it (with its personId when it names one).
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { ruleOf } from '../http/access.js';
import { resolveActor } from '../http/actor.js';
import type { AccessLog } from './access-log.js';

const MAX_SUBJECT_CHARS = 500;

export function installReadRecording(app: NestFastifyApplication, log: AccessLog): void {
  const fastify = app.getHttpAdapter().getInstance();
  fastify.addHook('onSend', async (request, reply, payload) => {
    const route = request.routeOptions.url;
    if (route === undefined || reply.statusCode !== 200) return payload;
    const action = `${request.method} ${route}`;
    const personal = ruleOf(action)?.personal;
    if (personal === undefined) return payload;
    const params = (request.params ?? {}) as Record<string, string | undefined>;
    const query = (request.query ?? {}) as Record<string, unknown>;
    let personId: string | null = null;
    let subject: string;
    if (personal === 'person') {
      personId = params.personId ?? null;
      subject = `person ${personId}`;
    } else if (personal === 'settlement') {
      personId = typeof payload === 'string' ? personOfVisit(payload) : null;
      subject = `settlement ${params.hospitalId}/${params.visitId}`;
    } else {
      personId = typeof query.personId === 'string' ? query.personId : null;
      const at = request.url.indexOf('?');
      subject = `list ${route}${at < 0 ? '' : request.url.slice(at)}`;
    }
    const actor = resolveActor(request as never);
    log.record({
      atMs: Date.now(),
      actorKind: actor.kind,
      actorId: actor.id,
      action,
      personId,
      subject: subject.slice(0, MAX_SUBJECT_CHARS),
      from: request.ip,
      requestId: request.id,
    });
    return payload;
  });
}

/** The person of a visit's answer ({current, history}): its settlements all name the same one. */
export function personOfVisit(json: string): string | null {
  try {
    const view = JSON.parse(json) as { current?: { personId?: unknown } | null; history?: Array<{ personId?: unknown }> };
    const personId = view.current?.personId ?? view.history?.[0]?.personId;
    return typeof personId === 'string' ? personId : null;
  } catch {
    return null;
  }
}
