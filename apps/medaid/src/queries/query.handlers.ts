// The read side: every GET goes through a query and its handler (@nestjs/cqrs QueryBus), never
// through the writer. Each handler reads what it answers from where it lives: the decision state
// (policies, fund accounts), the store (a person's stream, a visit's events by tag) or the
// projections on disk (settlement search, persons by category).
import { Inject } from '@nestjs/common';
import { IQueryHandler, Query, QueryHandler } from '@nestjs/cqrs';
import { PublishedPolicy, byFundRegionYear, fundBalanceFen, fundIncomeFen, policyKey, settlementResult, usageRateBp } from '#domain';
import type { SettledData, SettlementResult } from '#domain';
import type { EventStore } from '#event-store';
import type { AlertFilter, SettlementFilter } from '#ledger';
import { Ledger } from '../ledger/ledger.js';
import { DecisionState, PersonEntry } from '../shared/decision-state.js';
import { adjustmentSummaries, readVisit, reversalEvent, settledEvent } from '../shared/lookups.js';

/** Injection tokens of what the read side reads (the runtime provides them). */
export const STORE = Symbol('EventStore');
export const STATE = Symbol('DecisionState');

// ---- policies ----------------------------------------------------------------------------------

export class ListPolicies extends Query<
  Array<{ policyId: string; version: number; region: string; effectiveFrom: string; name: string | null; publishedSeq: number }>
> {}
export class GetPolicy extends Query<PublishedPolicy['policy'] | null> {
  constructor(
    readonly policyId: string,
    readonly version: number,
  ) {
    super();
  }
}

@QueryHandler(ListPolicies)
export class ListPoliciesHandler implements IQueryHandler<ListPolicies> {
  constructor(@Inject(STATE) private readonly state: DecisionState) {}
  async execute() {
    return [...this.state.registry.byKey.values()].map(({ policy, publishedSeq }) => ({
      policyId: policy.policyId,
      version: policy.version,
      region: policy.region,
      effectiveFrom: policy.effectiveFrom,
      name: policy.name ?? null,
      publishedSeq,
    }));
  }
}

@QueryHandler(GetPolicy)
export class GetPolicyHandler implements IQueryHandler<GetPolicy> {
  constructor(@Inject(STATE) private readonly state: DecisionState) {}
  async execute({ policyId, version }: GetPolicy) {
    return this.state.registry.byKey.get(policyKey(policyId, version))?.policy ?? null;
  }
}

// ---- persons and funds -------------------------------------------------------------------------

/** A person's state at its stream revision; null when the person has no events. */
export class GetPerson extends Query<PersonEntry | null> {
  constructor(readonly personId: string) {
    super();
  }
}

@QueryHandler(GetPerson)
export class GetPersonHandler implements IQueryHandler<GetPerson> {
  constructor(
    @Inject(STATE) private readonly state: DecisionState,
    @Inject(STORE) private readonly store: EventStore,
  ) {}
  async execute({ personId }: GetPerson) {
    const entry = await this.state.person(this.store, personId);
    return entry.revision < 0 ? null : entry;
  }
}

export class ListFunds extends Query<Array<Record<string, unknown>>> {
  constructor(
    readonly region?: string,
    readonly year?: number,
  ) {
    super();
  }
}

@QueryHandler(ListFunds)
export class ListFundsHandler implements IQueryHandler<ListFunds> {
  constructor(@Inject(STATE) private readonly state: DecisionState) {}
  async execute({ region, year }: ListFunds) {
    return [...this.state.funds.values()]
      .filter((a) => (year === undefined || a.year === year) && (region === undefined || a.region === region))
      .sort(byFundRegionYear)
      .map((a) => ({
        fund: a.fund,
        region: a.region,
        year: a.year,
        allocatedFen: a.allocatedFen,
        receivedFen: a.receivedFen,
        incomeFen: fundIncomeFen(a),
        paidFen: a.paidFen,
        balanceFen: fundBalanceFen(a),
        usageRateBp: usageRateBp(a),
      }));
  }
}

// ---- settlements -------------------------------------------------------------------------------

/** One settlement of a visit as GET /v1/settlements/{hospitalId}/{visitId} shows it. */
export type VisitHistoryEntry = SettlementResult & {
  settledAtMs: number;
  reversal: { reason: string; reversedAtMs: number } | null;
  adjustments?: Array<{ adjustmentId: string; layerId: string; deltaFen: number; status: string }>;
};

/** Current state and history of one visit (GET /v1/settlements/{hospitalId}/{visitId}); null when never settled. Read-your-writes. */
export class GetVisit extends Query<{ current: VisitHistoryEntry; history: VisitHistoryEntry[] } | null> {
  constructor(
    readonly hospitalId: string,
    readonly visitId: string,
  ) {
    super();
  }
}

@QueryHandler(GetVisit)
export class GetVisitHandler implements IQueryHandler<GetVisit> {
  constructor(
    @Inject(STATE) private readonly state: DecisionState,
    @Inject(STORE) private readonly store: EventStore,
  ) {}
  async execute({ hospitalId, visitId }: GetVisit) {
    const view = await readVisit(this.store, hospitalId, visitId);
    if (view.attempts.length === 0) return null;
    const history = await Promise.all(
      view.attempts.map(async (a): Promise<VisitHistoryEntry> => {
        const settled = settledEvent(view, a.settlementId)!;
        const reversal = reversalEvent(view, a.settlementId) ?? null;
        // Listed only when the settlement has adjustments, so a view without any keeps its shape.
        const adjustments = await adjustmentSummaries(this.store, view, a.settlementId);
        return {
          ...settlementResult(this.state.settlementRecord(settled.data as SettledData), a.status, false),
          settledAtMs: settled.createdMs,
          reversal: reversal ? { reason: (reversal.data as { reason: string }).reason, reversedAtMs: reversal.createdMs } : null,
          ...(adjustments.length > 0 ? { adjustments } : {}),
        };
      }),
    );
    return { current: history[history.length - 1]!, history };
  }
}

/** A page of the settlement search, newest first; `limit` rows at most. */
export class SearchSettlements extends Query<{ items: unknown[]; nextCursor: string | null; asOfPosition: number }> {
  constructor(
    readonly filter: Omit<SettlementFilter, 'limit'>,
    readonly limit: number,
  ) {
    super();
  }
}

@QueryHandler(SearchSettlements)
export class SearchSettlementsHandler implements IQueryHandler<SearchSettlements> {
  constructor(private readonly ledger: Ledger) {}
  async execute({ filter, limit }: SearchSettlements) {
    const { projections } = this.ledger.journal;
    const asOfPosition = projections.checkpoint();
    const rows = projections.settlements({ ...filter, limit: limit + 1 });
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? String(items[items.length - 1]!.position) : null, asOfPosition };
  }
}

/** A page of the persons who hold (held) a category, by person id. */
export class ListCategoryMembers extends Query<{ category: string; items: unknown[]; nextCursor: string | null; asOfPosition: number }> {
  constructor(
    readonly category: string,
    readonly afterPersonId: string,
    readonly limit: number,
    readonly asOf?: string,
  ) {
    super();
  }
}

@QueryHandler(ListCategoryMembers)
export class ListCategoryMembersHandler implements IQueryHandler<ListCategoryMembers> {
  constructor(private readonly ledger: Ledger) {}
  async execute({ category, afterPersonId, limit, asOf }: ListCategoryMembers) {
    const { projections } = this.ledger.journal;
    const asOfPosition = projections.checkpoint();
    const rows = projections.categoryMembers(category, afterPersonId, limit + 1, asOf);
    const items = rows.slice(0, limit);
    return { category, items, nextCursor: rows.length > limit ? items[items.length - 1]!.personId : null, asOfPosition };
  }
}

/** A page of the monitoring flags, newest first (README, "Monitoring thresholds"). */
export class SearchAlerts extends Query<{ items: unknown[]; nextCursor: string | null; asOfPosition: number }> {
  constructor(
    readonly filter: Omit<AlertFilter, 'limit'>,
    readonly limit: number,
  ) {
    super();
  }
}

@QueryHandler(SearchAlerts)
export class SearchAlertsHandler implements IQueryHandler<SearchAlerts> {
  constructor(private readonly ledger: Ledger) {}
  async execute({ filter, limit }: SearchAlerts) {
    const { projections } = this.ledger.journal;
    const asOfPosition = projections.checkpoint();
    const rows = projections.alerts({ ...filter, limit: limit + 1 });
    const items = rows.slice(0, limit);
    return { items, nextCursor: rows.length > limit ? String(items[items.length - 1]!.position) : null, asOfPosition };
  }
}

export const QUERY_HANDLERS = [
  SearchAlertsHandler,
  ListPoliciesHandler,
  GetPolicyHandler,
  GetPersonHandler,
  ListFundsHandler,
  GetVisitHandler,
  SearchSettlementsHandler,
  ListCategoryMembersHandler,
];
