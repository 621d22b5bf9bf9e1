// /ready's two modes: plain readiness (the decision state is at the head), and
// `?projections=caught-up` for an orchestrator, which also waits until the journal and the lists
// have once reached the head the service started at — then stays ready while they lag under load.
import { describe, expect, it } from '@jest/globals';
import { HealthController, Lifecycle } from './app.module.js';
import type { MedaidRuntime } from './infrastructure/runtime.js';
import { DecisionState } from './shared/decision-state.js';

function controller(journalAt: { position: number }) {
  const state = new DecisionState();
  state.position = 100; // the head when the service started
  const runtime = {
    state,
    storeKind: 'sqlite',
    rebuilt: { events: 0, fromPosition: 0, ms: 1 },
    stateFollower: null,
    accessLog: null as never,
    ledger: { status: () => ({ state: 'following', position: journalAt.position, entriesWritten: 0 }) },
  } as unknown as MedaidRuntime;
  const lifecycle = new Lifecycle(runtime);
  return { health: new HealthController(lifecycle, runtime), lifecycle };
}

function reply() {
  const r = { code: 200, status: (c: number) => void (r.code = c) };
  return r;
}

describe('GET /ready', () => {
  it('given a journal behind the start head, then ?projections=caught-up is 503 catching-up while plain /ready is 200', () => {
    const journal = { position: 40 };
    const { health } = controller(journal);
    const strict = reply();
    expect(health.ready(strict, 'caught-up').status).toBe('catching-up');
    expect(strict.code).toBe(503);
    const plain = reply();
    expect(health.ready(plain).status).toBe('ready');
    expect(plain.code).toBe(200);
  });

  it('given the journal once at the start head, then it stays ready even when it falls behind again under load', () => {
    const journal = { position: 100 };
    const { health } = controller(journal);
    expect(health.ready(reply(), 'caught-up').status).toBe('ready');
    journal.position = 90;
    const later = reply();
    expect(health.ready(later, 'caught-up').status).toBe('ready');
    expect(later.code).toBe(200);
  });

  it('given draining, then both are 503 draining', () => {
    const { health, lifecycle } = controller({ position: 100 });
    lifecycle.beforeApplicationShutdown();
    const r = reply();
    expect(health.ready(r, 'caught-up').status).toBe('draining');
    expect(r.code).toBe(503);
  });
});
