// The service's wiring: CQRS command bus, handlers, and (for `serve`) the HTTP and gRPC controllers.
// `simulate` uses the same module without controllers, so both run the same handlers.
import { NhsaController } from './nhsa/nhsa.controller.js';
import { IdentityController } from './nhsa/identity.js';
import { FhirController } from './fhir/fhir.controller.js';
import { ReconciliationController } from './reconciliation/reconciliation.controller.js';
import { NhsaGateway } from './nhsa/gateway.js';
import { NHSA_CONFIG } from './nhsa/config.js';
import { AccessLog } from './access-log/access-log.js';
import { AccessLogController } from './access-log/access-log.controller.js';
import {
  BeforeApplicationShutdown,
  Controller,
  DynamicModule,
  Get,
  Inject,
  Injectable,
  Module,
  OnApplicationShutdown,
  Query,
  Res,
} from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { ApiTags } from '@nestjs/swagger';
import { PersonsController } from './commands/persons/persons.controller.js';
import { RecordPersonFactHandler } from './commands/persons/person.handlers.js';
import { PoliciesController } from './commands/policies/policies.controller.js';
import { PublishPolicyHandler } from './commands/policies/policy.handlers.js';
import { PreviewDischargeHandler, ReverseSettlementHandler, SettleDischargeHandler } from './commands/settlements/settlement.handlers.js';
import { SettlementsController } from './commands/settlements/settlements.controller.js';
import { AlertListController, PersonListController, SettlementSearchController } from './queries/queries.controller.js';
import { QUERY_HANDLERS, STATE, STORE } from './queries/query.handlers.js';
import { FundsController } from './commands/funds/funds.controller.js';
import { AllocateFundHandler } from './commands/funds/fund.handlers.js';
import { GrantEnrolmentSubsidiesHandler } from './commands/funds/subsidy.handlers.js';
import { AdjustmentsController } from './commands/adjustments/adjustments.controller.js';
import { ApproveAdjustmentHandler, RejectAdjustmentHandler, RequestAdjustmentHandler } from './commands/adjustments/adjustment.handlers.js';
import { SettlementsGrpcController } from './grpc/settlements.grpc-controller.js';
import { ReportsController } from './reports/reports.controller.js';
import { SchemasController } from './http/schemas.controller.js';
import { LedgerController } from './ledger/ledger.controller.js';
import { SimulationJobs } from './simulation/simulation-jobs.js';
import { SIMULATIONS, SimulationsController } from './simulation/simulations.controller.js';
import { Ledger } from './ledger/ledger.js';
import type { MedaidRuntime } from './infrastructure/runtime.js';
import { scrape } from './shared/metrics.js';
import { EventWriter } from './shared/writer.js';

export const RUNTIME = Symbol('MedaidRuntime');

/** Closes the store after the HTTP server has drained, so pending appends are flushed last. */
@Injectable()
export class Lifecycle implements BeforeApplicationShutdown, OnApplicationShutdown {
  draining = false;
  private readonly drainListeners: Array<() => void> = [];
  constructor(@Inject(RUNTIME) private readonly runtime: MedaidRuntime) {}
  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }
  beforeApplicationShutdown(): void {
    this.draining = true;
    for (const listener of this.drainListeners) listener();
  }
  /** Parts that report their state in /ready (Kafka), by name; informational, never a reason for 503. */
  readonly reports = new Map<string, () => unknown>();
  /** Work that must end before the store closes (the Kafka relay's last flush); run in order, after HTTP drained. */
  private readonly storeCloseHooks: Array<() => Promise<void>> = [];
  beforeStoreClose(hook: () => Promise<void>): void {
    this.storeCloseHooks.push(hook);
  }
  async onApplicationShutdown(): Promise<void> {
    try {
      for (const hook of this.storeCloseHooks) await hook();
    } finally {
      await this.runtime.close();
    }
  }
}

interface StatusReply {
  status(code: number): unknown;
}

interface HeaderReply {
  header(name: string, value: string): unknown;
}

@ApiTags('operations')
@Controller()
export class HealthController {
  /** The log's head when the service started: the journal must reach it once before `?projections=caught-up` is ready. */
  private readonly headAtStart: number;
  private caughtUp = false;

  constructor(
    private readonly lifecycle: Lifecycle,
    @Inject(RUNTIME) private readonly runtime: MedaidRuntime,
  ) {
    this.headAtStart = runtime.state.position;
  }

  /** Liveness: the process answers. */
  @Get('health')
  health() {
    return { status: 'ok' };
  }

  /**
   * Readiness: the store is open and the decision state at the head of the log; 503 while draining for shutdown.
   * Kafka's state is shown but does not make the service unready: HTTP settlement works without it.
   */
  @Get('ready')
  ready(@Res({ passthrough: true }) reply: StatusReply, @Query('projections') projections?: string) {
    const { state: model } = this.runtime;
    const parts = Object.fromEntries([...this.lifecycle.reports].map(([name, report]) => [name, report()]));
    // The journal is a projection that may lag behind the log under load (its thread yields the CPU
    // to settlements): how far is shown, informational like Kafka's state. `?projections=caught-up`
    // (an orchestrator's readiness probe) is 503 until the journal and the lists have once reached
    // the log's head as it was at start-up: a new instance then joins only when its lists answer.
    const ledger = this.runtime.ledger.status();
    if (ledger.position >= this.headAtStart) this.caughtUp = true;
    const waiting = projections === 'caught-up' && !this.caughtUp;
    if (this.lifecycle.draining || waiting) reply.status(503);
    return {
      status: this.lifecycle.draining ? 'draining' : waiting ? 'catching-up' : 'ready',
      store: this.runtime.storeKind,
      position: model.position,
      events: model.eventCount,
      rebuilt: this.runtime.rebuilt,
      // How well the bounded person cache serves: a low hit rate means decisions read persons' streams.
      personCache: { size: model.persons.size, capacity: model.persons.capacity, hits: model.persons.hits, misses: model.persons.misses },
      ledger: { ...ledger, behind: Math.max(0, model.position - ledger.position) },
      // With --shared: the follower that applies every instance's events to the decision state.
      ...(this.runtime.stateFollower === null ? {} : { shared: { follower: this.runtime.stateFollower.status() } }),
      ...parts,
    };
  }

  /** Prometheus metrics (text format): requests, settlement outcomes, conflicts, append latency, lags. No ids in labels. */
  @Get('metrics')
  async prometheus(@Res({ passthrough: true }) reply: HeaderReply) {
    const { state, ledger } = this.runtime;
    const kafka = this.lifecycle.reports.get('kafka')?.() as { relayedPosition?: number } | undefined;
    const { contentType, body } = await scrape({
      position: state.position,
      journalPosition: ledger.status().position,
      relayedPosition: kafka?.relayedPosition ?? null,
      cachedPersons: state.persons.size,
    });
    reply.header('content-type', contentType);
    return body;
  }
}

@Module({})
export class MedaidModule {
  static forRoot(runtime: MedaidRuntime, options: { http: boolean; grpc?: boolean }): DynamicModule {
    return {
      module: MedaidModule,
      imports: [CqrsModule.forRoot()],
      controllers: [
        ...(options.http
          ? [
              PoliciesController,
              PersonListController,
              AlertListController,
              PersonsController,
              SettlementSearchController,
              FhirController,
              SettlementsController,
              FundsController,
              AdjustmentsController,
              ReportsController,
              LedgerController,
              AccessLogController,
              SimulationsController,
              NhsaController,
              IdentityController,
              ReconciliationController,
              SchemasController,
              HealthController,
            ]
          : []),
        ...(options.grpc ? [SettlementsGrpcController] : []),
      ],
      providers: [
        { provide: RUNTIME, useValue: runtime },
        { provide: EventWriter, useValue: runtime.writer },
        { provide: STATE, useValue: runtime.state },
        { provide: STORE, useValue: runtime.store },
        ...QUERY_HANDLERS,
        { provide: Ledger, useValue: runtime.ledger },
        { provide: AccessLog, useValue: runtime.accessLog },
        { provide: SIMULATIONS, useValue: new SimulationJobs(runtime.dataDir, runtime.storeUrl) },
        Lifecycle,
        PublishPolicyHandler,
        RecordPersonFactHandler,
        SettleDischargeHandler,
        PreviewDischargeHandler,
        ReverseSettlementHandler,
        AllocateFundHandler,
        GrantEnrolmentSubsidiesHandler,
        RequestAdjustmentHandler,
        ApproveAdjustmentHandler,
        RejectAdjustmentHandler,
        { provide: NHSA_CONFIG, useValue: runtime.nhsa ?? null },
        NhsaGateway,
      ],
    };
  }
}
