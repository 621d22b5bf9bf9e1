// The year report's projection on disk, next to the journal in DIR/ledger.sqlite: the domain's
// report fold (libs/domain/src/report.ts) with its facts in tables instead of maps — active
// settlements (a reversal deletes the row), enrolment subsidies, fund allocations, monitoring
// flags — and the small
// part (policies, counters, anomalies) in two more tables. Written by the journal's follower in the
// same transaction as the journal, with a checkpoint of its own (report_meta.position), so a crash
// leaves it exactly at its checkpoint; a journal written before these tables existed is not posted
// again: the follower reads the log from the lowest checkpoint and each part skips what it has.
//
// A report reads the year's rows in one read transaction and builds the figures with the same
// function as `medaid audit report` (buildYearReport), so the service's report and the audit's
// fold of the whole log can only differ if the projection does (`medaid audit replay` compares
// its tables row by row). Memory: the writer keeps the policies; a report holds one year's distinct persons
// while it is built.
import type Database from 'better-sqlite3';
import {
  AlertFact,
  Allocation,
  AdjustmentFact,
  Policy,
  ReportFacts,
  ReportState,
  SettlementFact,
  Subsidy,
  VisitType,
  YearReport,
  applyReportEvent,
  buildYearReport,
  initialReportState,
  noReportAnomalies,
  onPolicy,
  policyKey,
} from '#domain';
import type { ProjectedEvent } from './projections.js';

export const REPORT_TABLES_SQL = `
  CREATE TABLE IF NOT EXISTS report_meta (
    id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL, events INTEGER NOT NULL, anomalies TEXT NOT NULL
  ) STRICT;
  INSERT OR IGNORE INTO report_meta (id, position, events, anomalies) VALUES (1, 0, 0, '${JSON.stringify(noReportAnomalies())}');
  CREATE TABLE IF NOT EXISTS report_policies (position INTEGER PRIMARY KEY, policy_key TEXT NOT NULL UNIQUE, policy TEXT NOT NULL) STRICT;
  CREATE TABLE IF NOT EXISTS report_settlements (
    settlement_id TEXT NOT NULL UNIQUE, year INTEGER NOT NULL, person_id TEXT NOT NULL, region TEXT NOT NULL, category TEXT NOT NULL,
    visit_type TEXT NOT NULL, total_fen INTEGER NOT NULL, in_scope_fen INTEGER NOT NULL, policy_key TEXT NOT NULL,
    pays TEXT NOT NULL, adjustments TEXT
  ) STRICT;
  CREATE INDEX IF NOT EXISTS report_settlements_by_year ON report_settlements (year);
  CREATE TABLE IF NOT EXISTS report_subsidies (
    person_id TEXT NOT NULL, year INTEGER NOT NULL, subsidy TEXT NOT NULL, PRIMARY KEY (person_id, year)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS report_subsidies_by_year ON report_subsidies (year);
  CREATE TABLE IF NOT EXISTS report_allocations (
    fund TEXT NOT NULL, region TEXT NOT NULL, year INTEGER NOT NULL, superior_fen INTEGER NOT NULL, local_fen INTEGER NOT NULL,
    carryover_fen INTEGER NOT NULL, PRIMARY KEY (fund, region, year)
  ) STRICT, WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS report_alerts (
    person_id TEXT NOT NULL, year INTEGER NOT NULL, threshold_id TEXT NOT NULL, alert TEXT NOT NULL, PRIMARY KEY (person_id, year, threshold_id)
  ) STRICT, WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS report_alerts_by_year ON report_alerts (year);`;

const FACT_COLUMNS = 'person_id, region, category, visit_type, total_fen, in_scope_fen, policy_key, pays, adjustments';

export const REPORT_TABLES = [
  'report_meta',
  'report_policies',
  'report_settlements',
  'report_subsidies',
  'report_allocations',
  'report_alerts',
] as const;
export type ReportTable = (typeof REPORT_TABLES)[number];
const DUMPS: Record<ReportTable, string> = {
  report_meta: "SELECT 'meta' AS key, json_array(position, events, anomalies) AS row FROM report_meta",
  report_policies: 'SELECT policy_key AS key, json_array(position, policy) AS row FROM report_policies ORDER BY policy_key',
  report_settlements: `SELECT settlement_id AS key, json_array(year, ${FACT_COLUMNS}) AS row
    FROM report_settlements ORDER BY settlement_id`,
  report_subsidies: 'SELECT json_array(person_id, year) AS key, subsidy AS row FROM report_subsidies ORDER BY 1',
  report_allocations: `SELECT json_array(fund, region, year) AS key, json_array(superior_fen, local_fen, carryover_fen) AS row
    FROM report_allocations ORDER BY 1`,
  report_alerts: 'SELECT json_array(person_id, year, threshold_id) AS key, alert AS row FROM report_alerts ORDER BY 1',
};

interface FactRow {
  person_id: string;
  region: string;
  category: string;
  visit_type: string;
  total_fen: number;
  in_scope_fen: number;
  policy_key: string;
  pays: string;
  adjustments: string | null;
}
interface AllocationRow {
  fund: string;
  region: string;
  year: number;
  superior_fen: number;
  local_fen: number;
  carryover_fen: number;
}

/** The facts in the tables: every call is one prepared statement. */
class SqliteReportFacts implements ReportFacts {
  private readonly stmt;

  constructor(db: Database.Database) {
    this.stmt = {
      addSettlement: db.prepare(`INSERT INTO report_settlements (settlement_id, year, ${FACT_COLUMNS})
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (settlement_id) DO NOTHING`),
      removeSettlement: db.prepare<[string]>('DELETE FROM report_settlements WHERE settlement_id = ?'),
      settlement: db.prepare<[string], FactRow>(`SELECT ${FACT_COLUMNS} FROM report_settlements WHERE settlement_id = ?`),
      setAdjustments: db.prepare<[string, string]>('UPDATE report_settlements SET adjustments = ? WHERE settlement_id = ?'),
      settlementsOf: db.prepare<[number], FactRow>(`SELECT ${FACT_COLUMNS} FROM report_settlements WHERE year = ?`),
      addSubsidy: db.prepare<[string, number, string]>(
        'INSERT INTO report_subsidies (person_id, year, subsidy) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      subsidiesOf: db.prepare<[number], string>('SELECT subsidy FROM report_subsidies WHERE year = ?').pluck(),
      allocation: db.prepare<[string, string, number], AllocationRow>(
        'SELECT * FROM report_allocations WHERE fund = ? AND region = ? AND year = ?',
      ),
      putAllocation: db.prepare(`INSERT INTO report_allocations (fund, region, year, superior_fen, local_fen, carryover_fen)
        VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fund, region, year) DO UPDATE
        SET superior_fen = excluded.superior_fen, local_fen = excluded.local_fen, carryover_fen = excluded.carryover_fen`),
      allocationsOf: db.prepare<[number], AllocationRow>('SELECT * FROM report_allocations WHERE year = ?'),
      alert: db
        .prepare<[string, number, string], string>('SELECT alert FROM report_alerts WHERE person_id = ? AND year = ? AND threshold_id = ?')
        .pluck(),
      putAlert: db.prepare<[string, number, string, string]>(`INSERT INTO report_alerts (person_id, year, threshold_id, alert)
        VALUES (?, ?, ?, ?) ON CONFLICT (person_id, year, threshold_id) DO UPDATE SET alert = excluded.alert`),
      alertsOf: db.prepare<[number], string>('SELECT alert FROM report_alerts WHERE year = ?').pluck(),
    };
  }

  addSettlement(settlementId: string, year: number, f: SettlementFact): boolean {
    const pays = JSON.stringify(f.pays);
    const r = this.stmt.addSettlement.run(
      settlementId,
      year,
      f.personId,
      f.region,
      f.category,
      f.visitType,
      f.totalFen,
      f.inScopeFen,
      f.policy,
      pays,
    );
    return r.changes === 1;
  }
  removeSettlement(settlementId: string): boolean {
    return this.stmt.removeSettlement.run(settlementId).changes === 1;
  }
  settlement(settlementId: string, policies: ReadonlyMap<string, Policy>): SettlementFact | undefined {
    const row = this.stmt.settlement.get(settlementId);
    return row === undefined ? undefined : factOf(row, policies);
  }
  setAdjustments(settlementId: string, adjustments: readonly AdjustmentFact[]): void {
    this.stmt.setAdjustments.run(JSON.stringify(adjustments), settlementId);
  }
  addSubsidy(s: Subsidy): boolean {
    return this.stmt.addSubsidy.run(s.personId, s.year, JSON.stringify(s)).changes === 1;
  }
  allocation(fund: string, region: string, year: number): Allocation | undefined {
    const row = this.stmt.allocation.get(fund, region, year);
    return row === undefined ? undefined : allocationOf(row);
  }
  putAllocation(a: Allocation): void {
    this.stmt.putAllocation.run(a.fund, a.region, a.year, a.fen.superior, a.fen.local, a.fen.carryover);
  }
  *settlementsOf(year: number, policies: ReadonlyMap<string, Policy>): Iterable<SettlementFact> {
    for (const row of this.stmt.settlementsOf.iterate(year)) yield factOf(row, policies);
  }
  subsidiesOf(year: number): Iterable<Subsidy> {
    return this.stmt.subsidiesOf.all(year).map((text) => JSON.parse(text) as Subsidy);
  }
  allocationsOf(year: number): Iterable<Allocation> {
    return this.stmt.allocationsOf.all(year).map(allocationOf);
  }
  alert(personId: string, year: number, thresholdId: string): AlertFact | undefined {
    const text = this.stmt.alert.get(personId, year, thresholdId);
    return text === undefined ? undefined : (JSON.parse(text) as AlertFact);
  }
  putAlert(a: AlertFact): void {
    this.stmt.putAlert.run(a.personId, a.year, a.thresholdId, JSON.stringify(a));
  }
  *alertsOf(year: number): Iterable<AlertFact> {
    for (const text of this.stmt.alertsOf.iterate(year)) yield JSON.parse(text) as AlertFact;
  }
}

function factOf(row: FactRow, policies: ReadonlyMap<string, Policy>): SettlementFact {
  const policy = policies.get(row.policy_key);
  if (policy === undefined) throw new Error(`report projection: settlement of unknown policy ${row.policy_key}`);
  return {
    personId: row.person_id,
    region: row.region,
    category: row.category,
    visitType: row.visit_type as VisitType,
    totalFen: row.total_fen,
    inScopeFen: row.in_scope_fen,
    policy: row.policy_key,
    layers: policy.layers,
    pays: JSON.parse(row.pays) as number[],
    adjustments: row.adjustments === null ? [] : (JSON.parse(row.adjustments) as AdjustmentFact[]),
  };
}

const allocationOf = (row: AllocationRow): Allocation => ({
  year: row.year,
  fund: row.fund,
  region: row.region,
  fen: { superior: row.superior_fen, local: row.local_fen, carryover: row.carryover_fen },
});

export class ReportTables {
  private readonly stmt;
  private readonly facts: SqliteReportFacts;
  /** The writer's state between batches; dropped when a transaction fails (the tables are then where they were). */
  private cached: ReportState | undefined;

  constructor(private readonly db: Database.Database) {
    this.facts = new SqliteReportFacts(db);
    this.stmt = {
      meta: db.prepare<[], { position: number; events: number; anomalies: string }>(
        'SELECT position, events, anomalies FROM report_meta WHERE id = 1',
      ),
      setMeta: db.prepare<[number, number, string]>('UPDATE report_meta SET position = ?, events = ?, anomalies = ? WHERE id = 1'),
      policies: db.prepare<[], string>('SELECT policy FROM report_policies ORDER BY position').pluck(),
      addPolicy: db.prepare<[number, string, string]>(
        'INSERT INTO report_policies (position, policy_key, policy) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
      ),
      dumps: Object.fromEntries(
        Object.entries(DUMPS).map(([table, sql]) => [table, db.prepare<[], { key: string; row: string }>(sql)]),
      ) as Record<ReportTable, Database.Statement<[], { key: string; row: string }>>,
      years: db
        .prepare<[], number>(
          `SELECT year FROM report_settlements UNION SELECT year FROM report_subsidies UNION SELECT year FROM report_allocations
            UNION SELECT year FROM report_alerts ORDER BY 1`,
        )
        .pluck(),
    };
  }

  /** Every event up to here is folded into the report tables. */
  checkpoint(): number {
    return this.stmt.meta.get()!.position;
  }

  /** Inside the journal's transaction: folds the events after the report's checkpoint and moves it. */
  applyBatch(events: readonly ProjectedEvent[]): void {
    const state = this.cached ?? this.load();
    this.cached = undefined;
    const before = state.position;
    for (const e of events) {
      if (e.position <= state.position) continue;
      if (e.type === 'PolicyPublished') {
        const policy = (e.data as { policy: Policy }).policy;
        const key = policyKey(policy.policyId, policy.version);
        if (!state.policies.has(key)) this.stmt.addPolicy.run(e.position, key, JSON.stringify(policy));
      }
      applyReportEvent(state, e);
    }
    if (state.position !== before) this.stmt.setMeta.run(state.position, state.events, JSON.stringify(state.anomalies));
    this.cached = state;
  }

  /** After a failed transaction: the next batch reads the state from the tables again. */
  forget(): void {
    this.cached = undefined;
  }

  /** The year's report as of the report's checkpoint, read in one transaction. */
  yearReport(year: number): YearReport {
    return this.db.transaction(() => buildYearReport(this.load(), year)).deferred();
  }

  /** The years that have settlements, subsidies or allocations (for an audit's comparison). */
  years(): number[] {
    return this.stmt.years.all();
  }

  /**
   * Every row of one of the report's tables as text, ordered by its key's text (SQLite's byte
   * order), streamed: an audit compares two projections row by row without holding either.
   */
  dump(table: ReportTable): IterableIterator<{ key: string; row: string }> {
    return this.stmt.dumps[table].iterate();
  }

  private load(): ReportState {
    const meta = this.stmt.meta.get()!;
    const state = initialReportState(this.facts);
    for (const text of this.stmt.policies.all()) onPolicy(state, JSON.parse(text) as Policy);
    state.position = meta.position;
    state.events = meta.events;
    // an anomaly counter added later starts at 0 on a projection written before it
    state.anomalies = { ...noReportAnomalies(), ...(JSON.parse(meta.anomalies) as Partial<ReportState['anomalies']>) };
    return state;
  }
}
