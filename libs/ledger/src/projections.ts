// The query projections that live next to the journal in DIR/ledger.sqlite, written by the same
// follower of the log in the same transaction as the journal — each batch of events moves the
// journal, these tables and their checkpoint together, so after a crash they are exactly at
// their checkpoint and are caught up from it. They have a checkpoint of their own (a journal
// written before they existed is not re-posted: the projections alone read the log again).
//
// - settlements: one row per settlement (status, amounts, who, where, when), searched by hospital,
//   person, discharge date, category and status with keyset (cursor) paging, newest first;
// - person_categories: each person's category intervals as the person decider keeps them
//   (CategoryAssigned adds one, CategoryRevoked ends or removes them), listed by category.
import type Database from 'better-sqlite3';
import { PERSON_STREAM_PREFIX, dayBefore } from '#domain';
import type {
  CategoryAssignedData,
  CategoryRevokedData,
  HighMedicalCostClearedData,
  HighMedicalCostFlaggedData,
  SettledData,
  SettlementReversedData,
} from '#domain';

/** What a projection needs of an event. */
export interface ProjectedEvent {
  position: number;
  type: string;
  streamId: string;
  data: unknown;
  createdMs?: number;
}

export const PROJECTION_TABLES_SQL = `
  CREATE TABLE IF NOT EXISTS projection_checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), position INTEGER NOT NULL) STRICT;
  INSERT OR IGNORE INTO projection_checkpoint (id, position) VALUES (1, 0);
  CREATE TABLE IF NOT EXISTS settlements (
    position INTEGER PRIMARY KEY, settlement_id TEXT NOT NULL UNIQUE, hospital_id TEXT NOT NULL, visit_id TEXT NOT NULL, person_id TEXT NOT NULL,
    region TEXT NOT NULL, year INTEGER NOT NULL, discharge_date TEXT NOT NULL, category TEXT NOT NULL, status TEXT NOT NULL,
    policy_id TEXT NOT NULL, policy_version INTEGER NOT NULL, total_fen INTEGER NOT NULL, fund_pay_fen INTEGER NOT NULL,
    settled_at_ms INTEGER, reversed_position INTEGER, reversed_at_ms INTEGER
  ) STRICT;
  CREATE INDEX IF NOT EXISTS settlements_by_hospital_time ON settlements (hospital_id, settled_at_ms);
  CREATE INDEX IF NOT EXISTS settlements_by_hospital_reversal ON settlements (hospital_id, reversed_at_ms) WHERE reversed_at_ms IS NOT NULL;
  CREATE INDEX IF NOT EXISTS settlements_by_hospital ON settlements (hospital_id, position);
  CREATE INDEX IF NOT EXISTS settlements_by_person ON settlements (person_id, position);
  CREATE INDEX IF NOT EXISTS settlements_by_date ON settlements (discharge_date, position);
  CREATE INDEX IF NOT EXISTS settlements_by_category ON settlements (category, position);
  CREATE TABLE IF NOT EXISTS person_categories (
    category TEXT NOT NULL, person_id TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT, position INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX IF NOT EXISTS person_categories_by_category ON person_categories (category, person_id);
  CREATE TABLE IF NOT EXISTS alerts (
    position INTEGER PRIMARY KEY, person_id TEXT NOT NULL, year INTEGER NOT NULL, threshold_id TEXT NOT NULL, per TEXT NOT NULL,
    above_fen INTEGER NOT NULL, amount_fen INTEGER NOT NULL, settlement_id TEXT NOT NULL, category TEXT NOT NULL, region TEXT NOT NULL,
    discharge_date TEXT NOT NULL, flagged_at_ms INTEGER, status TEXT NOT NULL, cleared_position INTEGER
  ) STRICT;
  CREATE INDEX IF NOT EXISTS alerts_by_region ON alerts (region, position);
  CREATE INDEX IF NOT EXISTS alerts_by_date ON alerts (discharge_date, position);`;

/** GET /v1/alerts: monitoring flags (HighMedicalCostFlagged), newest first, keyset paging. */
export interface AlertFilter {
  region?: string;
  category?: string;
  thresholdId?: string;
  personId?: string;
  status?: 'standing' | 'cleared';
  /** Discharge dates of the flagging settlement, from and to (inclusive). */
  from?: string;
  to?: string;
  before?: number;
  limit: number;
}

export interface AlertRow {
  personId: string;
  year: number;
  thresholdId: string;
  per: string;
  aboveFen: number;
  amountFen: number;
  settlementId: string;
  category: string;
  region: string;
  dischargeDate: string;
  flaggedAtMs: number | null;
  status: 'standing' | 'cleared';
  position: number;
}

/** A settlement or reversal record of a hospital (reconciliation). */
export interface ReconciliationRow {
  kind: 'settlement' | 'reversal';
  at_ms: number;
  position: number;
  settlement_id: string;
  visit_id: string;
  person_id: string;
  total_fen: number;
}

export interface SettlementFilter {
  hospitalId?: string;
  personId?: string;
  category?: string;
  status?: 'settled' | 'reversed';
  /** Discharge dates from and to (inclusive, YYYY-MM-DD). */
  from?: string;
  to?: string;
  /** Keyset cursor: rows before this position (newest first). */
  before?: number;
  limit: number;
}

export interface SettlementRow {
  settlementId: string;
  hospitalId: string;
  visitId: string;
  personId: string;
  region: string;
  year: number;
  dischargeDate: string;
  category: string;
  status: 'settled' | 'reversed';
  policy: { policyId: string; version: number };
  totalFen: number;
  fundPayFen: number;
  patientPayFen: number;
  settledAtMs: number | null;
  position: number;
}

export class ProjectionTables {
  private readonly stmt;
  private readonly searches = new Map<string, Database.Statement<Array<string | number>, Record<string, unknown>>>();

  constructor(private readonly db: Database.Database) {
    this.stmt = {
      checkpoint: db.prepare<[], number>('SELECT position FROM projection_checkpoint WHERE id = 1').pluck(),
      setCheckpoint: db.prepare<[number]>('UPDATE projection_checkpoint SET position = ? WHERE id = 1'),
      insertSettlement:
        db.prepare(`INSERT OR IGNORE INTO settlements (position, settlement_id, hospital_id, visit_id, person_id, region, year, discharge_date, category,
        status, policy_id, policy_version, total_fen, fund_pay_fen, settled_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'settled', ?, ?, ?, ?, ?)`),
      reverse: db.prepare<[number, number | null, string]>(
        "UPDATE settlements SET status = 'reversed', reversed_position = ?, reversed_at_ms = ? WHERE settlement_id = ?",
      ),
      reconciliation: db.prepare<[string, number, number, string, number, number, number], ReconciliationRow>(
        `SELECT 'settlement' AS kind, settled_at_ms AS at_ms, position, settlement_id, visit_id, person_id, total_fen FROM settlements
           WHERE hospital_id = ? AND settled_at_ms >= ? AND settled_at_ms < ?
         UNION ALL
         SELECT 'reversal' AS kind, reversed_at_ms AS at_ms, reversed_position AS position, settlement_id, visit_id, person_id, total_fen FROM settlements
           WHERE hospital_id = ? AND reversed_at_ms >= ? AND reversed_at_ms < ?
         ORDER BY at_ms, position LIMIT ?`,
      ),
      adjust: db.prepare<[number, string]>('UPDATE settlements SET fund_pay_fen = fund_pay_fen + ? WHERE settlement_id = ?'),
      assign: db.prepare<[string, string, string, string | null, number]>(
        'INSERT INTO person_categories (category, person_id, valid_from, valid_to, position) VALUES (?, ?, ?, ?, ?)',
      ),
      revokeLater: db.prepare<[string, string, string]>(
        'DELETE FROM person_categories WHERE category = ? AND person_id = ? AND valid_from >= ?',
      ),
      revokeEnd: db.prepare<[string, string, string, string]>(
        'UPDATE person_categories SET valid_to = ? WHERE category = ? AND person_id = ? AND (valid_to IS NULL OR valid_to > ?)',
      ),
      memberIds: db
        .prepare<[string, string, number], string>(
          'SELECT DISTINCT person_id FROM person_categories WHERE category = ? AND person_id > ? ORDER BY person_id LIMIT ?',
        )
        .pluck(),
      memberIdsAsOf: db
        .prepare<[string, string, string, string, number], string>(
          `SELECT DISTINCT person_id FROM person_categories
        WHERE category = ? AND person_id > ? AND valid_from <= ? AND (valid_to IS NULL OR valid_to >= ?) ORDER BY person_id LIMIT ?`,
        )
        .pluck(),
      // The row as one text made by SQLite: an audit compares millions of them.
      settlementRows: db.prepare<[number, number], { position: number; row: string }>(
        `SELECT position, json_array(position, settlement_id, hospital_id, visit_id, person_id, region, year, discharge_date, category,
          status, policy_id, policy_version, total_fen, fund_pay_fen, settled_at_ms, reversed_position, reversed_at_ms) AS row
        FROM settlements WHERE position > ? ORDER BY position LIMIT ?`,
      ),
      alertRows: db.prepare<[number, number], { position: number; row: string }>(
        `SELECT position, json_array(position, person_id, year, threshold_id, per, above_fen, amount_fen, settlement_id, category,
          region, discharge_date, flagged_at_ms, status, cleared_position) AS row
        FROM alerts WHERE position > ? ORDER BY position LIMIT ?`,
      ),
      categoryRows: db.prepare<
        [string, string, string, number, number],
        Record<string, unknown>
      >(`SELECT category, person_id, valid_from, valid_to, position
        FROM person_categories WHERE (category, person_id, valid_from, position) > (?, ?, ?, ?) ORDER BY category, person_id, valid_from, position LIMIT ?`),
      flag: db.prepare(`INSERT OR IGNORE INTO alerts (position, person_id, year, threshold_id, per, above_fen, amount_fen, settlement_id, category,
        region, discharge_date, flagged_at_ms, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'standing')`),
      clear: db.prepare<[number, string, number, string]>(
        "UPDATE alerts SET status = 'cleared', cleared_position = ? WHERE person_id = ? AND year = ? AND threshold_id = ? AND status = 'standing'",
      ),
      intervals: db.prepare<[string, string], { valid_from: string; valid_to: string | null }>(
        'SELECT valid_from, valid_to FROM person_categories WHERE category = ? AND person_id = ? ORDER BY valid_from, position',
      ),
    };
  }

  /** Raw settlement rows after a position, in position order (for audit replay's comparison). */
  settlementRowsAfter(position: number, limit: number): Array<{ position: number; row: string }> {
    return this.stmt.settlementRows.all(position, limit);
  }

  /**
   * A hospital's settlement and reversal records recorded from `fromMs` (inclusive) to `toMs`
   * (exclusive), in time order, at most `limit` (对账: a reversal is a record of its own, at its time).
   */
  reconciliationRows(hospitalId: string, fromMs: number, toMs: number, limit: number): ReconciliationRow[] {
    return this.stmt.reconciliation.all(hospitalId, fromMs, toMs, hospitalId, fromMs, toMs, limit);
  }

  /** Alert rows (monitoring flags) after a log position, in position order (for audit replay). */
  alertRowsAfter(position: number, limit: number): Array<{ position: number; row: string }> {
    return this.stmt.alertRows.all(position, limit);
  }

  /** Category rows after a key (category, person, valid_from, position), in that order (for audit replay). */
  categoryRowsAfter(
    after: readonly [string, string, string, number],
    limit: number,
  ): Array<{ key: [string, string, string, number]; row: string }> {
    return this.stmt.categoryRows.all(...after, limit).map((r) => ({
      key: [r.category as string, r.person_id as string, r.valid_from as string, r.position as number],
      row: JSON.stringify(r),
    }));
  }

  /** Every event up to here is applied to the projections. */
  checkpoint(): number {
    return this.stmt.checkpoint.get() ?? 0;
  }

  /** Inside the journal's transaction: applies the events after the projections' checkpoint and moves it. */
  applyBatch(events: readonly ProjectedEvent[]): void {
    let position = this.checkpoint();
    for (const e of events) {
      if (e.position <= position) continue;
      this.apply(e);
      position = e.position;
    }
    this.stmt.setCheckpoint.run(position);
  }

  private apply(e: ProjectedEvent): void {
    switch (e.type) {
      case 'DischargeSettled': {
        const s = e.data as SettledData;
        const d = s.discharge;
        const fundPay = s.layers.reduce((sum, l) => sum + l[4], 0);
        this.stmt.insertSettlement.run(
          e.position,
          s.settlementId,
          d.hospitalId,
          d.visitId,
          e.streamId.slice(PERSON_STREAM_PREFIX.length),
          d.region,
          s.year,
          d.dischargeDate,
          s.category,
          s.policy.policyId,
          s.policy.version,
          d.totalFen,
          fundPay,
          e.createdMs ?? null,
        );
        return;
      }
      case 'SettlementReversed':
        this.stmt.reverse.run(e.position, e.createdMs ?? null, (e.data as SettlementReversedData).settlementId);
        return;
      case 'AdjustmentApplied': {
        const a = e.data as { settlementId: string; deltaFen: number };
        this.stmt.adjust.run(a.deltaFen, a.settlementId);
        return;
      }
      case 'CategoryAssigned': {
        const c = e.data as CategoryAssignedData;
        this.stmt.assign.run(c.category, c.personId, c.validFrom, c.validTo, e.position);
        return;
      }
      case 'CategoryRevoked': {
        // As the person decider does: intervals from `from` on disappear, the others end the day before.
        const r = e.data as CategoryRevokedData;
        this.stmt.revokeLater.run(r.category, r.personId, r.from);
        const lastDay = dayBefore(r.from);
        this.stmt.revokeEnd.run(lastDay, r.category, r.personId, lastDay);
        return;
      }
      case 'HighMedicalCostFlagged': {
        const a = e.data as HighMedicalCostFlaggedData;
        this.stmt.flag.run(
          e.position,
          a.personId,
          a.year,
          a.thresholdId,
          a.per,
          a.aboveFen,
          a.amountFen,
          a.settlementId,
          a.category,
          a.region,
          a.dischargeDate,
          e.createdMs ?? null,
        );
        return;
      }
      case 'HighMedicalCostCleared': {
        const c = e.data as HighMedicalCostClearedData;
        this.stmt.clear.run(e.position, c.personId, c.year, c.thresholdId);
        return;
      }
      default:
        return;
    }
  }

  /**
   * Rows of a table matching every condition whose value is given, newest first (by log position):
   * one statement per combination of conditions, prepared once.
   */
  private newestFirst(table: 'settlements' | 'alerts', limit: number, conditions: Array<[string, string | number | undefined]>) {
    const given = conditions.filter(([, value]) => value !== undefined) as Array<[string, string | number]>;
    const where = given.map(([sql]) => sql);
    const sql = `SELECT * FROM ${table} ${where.length === 0 ? '' : `WHERE ${where.join(' AND ')}`} ORDER BY position DESC LIMIT ?`;
    let statement = this.searches.get(sql);
    if (statement === undefined)
      this.searches.set(sql, (statement = this.db.prepare<Array<string | number>, Record<string, unknown>>(sql)));
    return statement.all(...given.map(([, value]) => value), limit);
  }

  /** Monitoring flags matching the filter, newest first (by log position), at most `limit`. */
  alerts(f: AlertFilter): AlertRow[] {
    const rows = this.newestFirst('alerts', f.limit, [
      ['region = ?', f.region],
      ['category = ?', f.category],
      ['threshold_id = ?', f.thresholdId],
      ['person_id = ?', f.personId],
      ['status = ?', f.status],
      ['discharge_date >= ?', f.from],
      ['discharge_date <= ?', f.to],
      ['position < ?', f.before],
    ]);
    return rows.map((r) => ({
      personId: r.person_id as string,
      year: r.year as number,
      thresholdId: r.threshold_id as string,
      per: r.per as string,
      aboveFen: r.above_fen as number,
      amountFen: r.amount_fen as number,
      settlementId: r.settlement_id as string,
      category: r.category as string,
      region: r.region as string,
      dischargeDate: r.discharge_date as string,
      flaggedAtMs: r.flagged_at_ms as number | null,
      status: r.status as 'standing' | 'cleared',
      position: r.position as number,
    }));
  }

  /** Settlements matching the filter, newest first (by log position), at most `limit`. */
  settlements(f: SettlementFilter): SettlementRow[] {
    const rows = this.newestFirst('settlements', f.limit, [
      ['hospital_id = ?', f.hospitalId],
      ['person_id = ?', f.personId],
      ['category = ?', f.category],
      ['status = ?', f.status],
      ['discharge_date >= ?', f.from],
      ['discharge_date <= ?', f.to],
      ['position < ?', f.before],
    ]);
    return rows.map((r) => ({
      settlementId: r.settlement_id as string,
      hospitalId: r.hospital_id as string,
      visitId: r.visit_id as string,
      personId: r.person_id as string,
      region: r.region as string,
      year: r.year as number,
      dischargeDate: r.discharge_date as string,
      category: r.category as string,
      status: r.status as 'settled' | 'reversed',
      policy: { policyId: r.policy_id as string, version: r.policy_version as number },
      totalFen: r.total_fen as number,
      fundPayFen: r.fund_pay_fen as number,
      patientPayFen: (r.total_fen as number) - (r.fund_pay_fen as number),
      settledAtMs: r.settled_at_ms as number | null,
      position: r.position as number,
    }));
  }

  /**
   * Persons who hold (or held) a category, by person id after `afterPersonId`, each with their
   * intervals of it; with `asOf`, only those whose interval covers that day.
   */
  categoryMembers(
    category: string,
    afterPersonId: string,
    limit: number,
    asOf?: string,
  ): Array<{ personId: string; intervals: Array<{ validFrom: string; validTo: string | null }> }> {
    const ids =
      asOf === undefined
        ? this.stmt.memberIds.all(category, afterPersonId, limit)
        : this.stmt.memberIdsAsOf.all(category, afterPersonId, asOf, asOf, limit);
    return ids.map((personId) => ({
      personId,
      intervals: this.stmt.intervals.all(category, personId).map((r) => ({ validFrom: r.valid_from, validTo: r.valid_to })),
    }));
  }
}
