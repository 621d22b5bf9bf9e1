// Wires Kafka into the service when KAFKA_BROKERS is set: the discharge ingress (consumer group)
// and the event relay (outbox). With several instances on one store (--shared) the relay runs in
// one of them at a time, the holder of a Kafka lease (#kafka's KafkaLease on the one-partition
// topic <events topic>.relay-lease, group <group id>.relay), with its checkpoint kept in that
// lease; the others stand by and one takes over within seconds when the holder dies. Nothing here can stop the HTTP service: topics are created and
// both parts started in the background, retried with backoff while the broker is unreachable.
// Shutdown order (SIGTERM): the ingress stops first when draining begins (the message in hand is
// finished, published and committed), then, after HTTP has drained, the relay flushes what the
// store holds, and only then the store is closed.
import type { INestApplicationContext } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { join } from 'node:path';
import { KafkaClient, backoffMs, sleep } from '#kafka';
import { logLine } from '../shared/log.js';
import { callers } from '../http/actor.js';
import type { ConsumerRunner, KafkaLease, KafkaPublisher, LeaseTerm } from '#kafka';
import { Lifecycle } from '../app.module.js';
import type { MedaidRuntime } from '../infrastructure/runtime.js';
import { DischargeIngress } from './discharge-ingress.js';
import { EventRelay } from './event-relay.js';
import { PublicEvents } from './public-events.js';
import { KafkaSettings, kafkaSettingsFromEnv } from './kafka-settings.js';
import { LeaseCheckpoint, RelayCheckpoint } from './relay-checkpoint.js';
import type { RelayCheckpointStore } from './relay-checkpoint.js';
import { metrics } from '../shared/metrics.js';

/** Messages of one partition settled at the same time (same key: still one after the other). */
const INGRESS_MESSAGES_CONCURRENTLY = 64;
/** How long the relay may spend publishing what is left at shutdown. */
const RELAY_FLUSH_DEADLINE_MS = 5_000;

export type KafkaBridgeState = 'starting' | 'running' | 'stopping' | 'stopped';

export class KafkaBridge {
  state: KafkaBridgeState = 'starting';
  private readonly client: KafkaClient;
  private readonly ingressPublisher: KafkaPublisher;
  private readonly relayPublisher: KafkaPublisher;
  private readonly ingress: ConsumerRunner;
  /** The relay: always this instance's alone; with a lease, the one of the current term (null while standing by). */
  private relay: EventRelay | null;
  private readonly newRelay: (checkpoint: RelayCheckpointStore) => EventRelay;
  /** Several instances on one store: the relay runs only while this lease is held. */
  private readonly lease: KafkaLease | null;
  private readonly leaseTopic: string;
  private readonly stopping = new AbortController();
  private started: Promise<void> | undefined;
  private ingressStopped: Promise<void> | undefined;
  private stopped: Promise<void> | undefined;

  constructor(
    readonly settings: KafkaSettings,
    bus: CommandBus,
    runtime: MedaidRuntime,
  ) {
    this.client = new KafkaClient({ brokers: settings.brokers, clientId: 'medaid', log: logLine });
    this.ingressPublisher = this.client.publisher('ingress');
    this.relayPublisher = this.client.publisher('relay');
    // With credentials configured, a discharge must prove which hospital sent it (its signature).
    const handler = new DischargeIngress(bus, runtime.writer, this.ingressPublisher, settings.topics, callers.identity);
    this.ingress = this.client.consumer({
      groupId: settings.groupId,
      topics: [settings.topics.discharges],
      handle: handler.handle,
      partitionsConcurrently: Math.min(settings.partitions, 16),
      // Discharges of different visits are independent (the handlers order what touches one
      // person or visit); one at a time per partition would leave the store's group commit idle.
      messagesConcurrently: INGRESS_MESSAGES_CONCURRENTLY,
      sessionTimeoutMs: settings.sessionTimeoutMs,
      onLag: (_topic, partition, lag) => metrics.ingressLag(partition, lag),
    });
    const publicEvents = new PublicEvents(runtime.writer);
    this.newRelay = (checkpoint) =>
      new EventRelay(runtime.store, this.relayPublisher, checkpoint, settings.topics, logLine, {
        present: (e) => publicEvents.present(e),
      });
    // One checkpoint per events topic: pointing the relay at other topics (another prefix) relays everything there.
    this.leaseTopic = `${settings.topics.events}.relay-lease`;
    if (runtime.stateFollower === null) {
      this.lease = null;
      this.relay = this.newRelay(new RelayCheckpoint(join(runtime.dataDir, `kafka-relay.${settings.topics.events}.checkpoint.json`)));
    } else {
      this.relay = null;
      this.lease = this.client.lease({
        groupId: `${settings.groupId}.relay`,
        topic: this.leaseTopic,
        sessionTimeoutMs: settings.sessionTimeoutMs,
        onAcquired: (term) => this.relayTerm(term),
        onEnded: async () => {
          const relay = this.relay;
          this.relay = null;
          metrics.relayLeaseHeld(false);
          await relay?.abandon();
        },
      });
    }
  }

  /** This instance holds the relay lease: relay from the checkpoint the last holder left in it. */
  private async relayTerm(term: LeaseTerm): Promise<void> {
    const relay = this.newRelay(new LeaseCheckpoint(term, `kafka lease ${this.leaseTopic} (join ${term.join})`));
    this.relay = relay;
    metrics.relayLeaseHeld(true);
    await relay.start();
    logLine('info', 'kafka relay: this instance relays now', { from: relay.position, join: term.join });
  }

  /** Returns at once; the topics are created and both parts started in the background. */
  start(): void {
    this.started ??= this.run().catch((error: unknown) => logLine('error', 'kafka could not start', { error: String(error) }));
  }

  /** Stops taking discharges from Kafka; the message being handled is finished and committed. */
  stopIngress(): Promise<void> {
    this.stopping.abort();
    this.ingressStopped ??= this.ingress.stop();
    return this.ingressStopped;
  }

  /** Ingress first, then the relay's last flush, then the connections. Never throws. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.state = 'stopping';
      try {
        await this.stopIngress();
        // A start still waiting for the broker ends by itself once it sees the abort; do not wait long for it.
        await Promise.race([this.started, sleep(1_000)]);
        // The flush writes its checkpoint while the lease is still held; then the lease is handed over.
        await this.relay?.stop(RELAY_FLUSH_DEADLINE_MS);
        await this.lease?.stop();
      } catch (error) {
        logLine('error', 'kafka bridge: stopping failed', { error: String(error) });
      }
      await Promise.all([this.ingressPublisher.disconnect(), this.relayPublisher.disconnect()]);
      this.state = 'stopped';
    })();
    return this.stopped;
  }

  /** What /ready or a log line may show. */
  status() {
    return {
      state: this.state,
      ingress: this.ingress.state,
      relay: this.relay?.state ?? 'standby',
      relayedPosition: this.relay?.position ?? null,
      ...(this.lease === null ? {} : { relayLease: this.lease.state, relayLeaseTerms: this.lease.terms }),
    };
  }

  private async run(): Promise<void> {
    const { signal } = this.stopping;
    const { topics, partitions } = this.settings;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const specs = Object.values(topics).map((topic) => ({ topic, partitions }));
        if (this.lease !== null) specs.push({ topic: this.leaseTopic, partitions: 1 });
        const created = await this.client.ensureTopics(specs);
        if (created.length > 0) logLine('info', 'kafka topics created', { topics: created, partitions });
        break;
      } catch (error) {
        if (attempt === 1 || attempt % 10 === 0)
          logLine('warn', 'kafka: cannot create topics yet; retrying', { error: String(error), attempt });
        await sleep(backoffMs(attempt, { initialMs: 500, maxMs: 10_000 }), signal);
      }
    }
    if (signal.aborted) return;
    await this.relay?.start();
    this.lease?.start();
    if (signal.aborted) return;
    this.ingress.start();
    this.state = 'running';
    logLine('info', 'kafka started', {
      brokers: this.settings.brokers,
      groupId: this.settings.groupId,
      topics,
      relayFrom: this.relay?.position ?? (this.lease === null ? null : 'the relay lease holder'),
    });
  }
}

/**
 * Starts Kafka when KAFKA_BROKERS is set (null otherwise: the service runs exactly as without it)
 * and ties its stop to the service's shutdown.
 */
export function startKafkaFromEnv(
  app: INestApplicationContext,
  runtime: MedaidRuntime,
  env: NodeJS.ProcessEnv = process.env,
): KafkaBridge | null {
  const settings = kafkaSettingsFromEnv(env);
  if (settings === null) return null;
  const bridge = new KafkaBridge(settings, app.get(CommandBus), runtime);
  const lifecycle = app.get(Lifecycle);
  lifecycle.onDrain(() => void bridge.stopIngress());
  lifecycle.beforeStoreClose(() => bridge.stop());
  lifecycle.reports.set('kafka', () => bridge.status());
  bridge.start();
  return bridge;
}
