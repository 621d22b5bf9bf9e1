// What the relay publishes, in a form a consumer reads without the policy: a DischargeSettled's data
// is the settlement as the API answers it (layers by id, kind and fund, amounts by name), instead of
// the compact stored form (positional layer arrays, decodable only with the policy version); other
// events are already readable as stored. medaid.payouts.v1 gets a plain payout record per settlement
// and per reversal (the reversal's amounts negative): who is paid what from which fund.
import { SettledData, SettlementReversedData, settlementResult } from '#domain';
import type { RecordedEvent } from '#event-store';
import { readVisit, settledEvent } from '../shared/lookups.js';
import type { EventWriter } from '../shared/writer.js';

export interface PayoutRecord {
  /** The event the payout comes from (its id, stream, revision and log position). */
  id: string;
  streamId: string;
  revision: number;
  position: number;
  createdMs: number;
  kind: 'settlement' | 'reversal';
  settlementId: string;
  hospitalId: string;
  visitId: string;
  personId: string;
  region: string;
  year: number;
  category: string;
  policy: { policyId: string; version: number };
  /** One per layer that pays; negative for a reversal. */
  payouts: Array<{ layerId: string; kind: string; fund: string; amountFen: number }>;
  fundPayFen: number;
  patientPayFen: number;
}

export interface Presented {
  data: unknown;
  payout: PayoutRecord | null;
}

/** Turns recorded events into their public form; reads the settlement a reversal names from the store. */
export class PublicEvents {
  constructor(private readonly writer: EventWriter) {}

  async present(e: RecordedEvent): Promise<Presented> {
    if (e.type === 'DischargeSettled') {
      const result = this.result(e.data as SettledData);
      const { duplicate: _never, ...settlement } = result;
      return { data: settlement, payout: this.payout(e, 'settlement', result, 1) };
    }
    if (e.type === 'SettlementReversed') {
      const r = e.data as SettlementReversedData;
      const settled = settledEvent(await readVisit(this.writer.store, r.hospitalId, r.visitId), r.settlementId);
      if (settled === undefined) throw new Error(`reversal of ${r.settlementId}: its settlement is not in the log`);
      return { data: e.data, payout: this.payout(e, 'reversal', this.result(settled.data as SettledData), -1) };
    }
    return { data: e.data, payout: null };
  }

  private result(data: SettledData) {
    return settlementResult(this.writer.state.settlementRecord(data), 'settled', false);
  }

  private payout(e: RecordedEvent, kind: PayoutRecord['kind'], s: ReturnType<PublicEvents['result']>, sign: 1 | -1): PayoutRecord {
    const signed = (fen: number) => (fen === 0 ? 0 : sign * fen);
    return {
      id: e.id,
      streamId: e.streamId,
      revision: e.revision,
      position: e.position,
      createdMs: e.createdMs,
      kind,
      settlementId: s.settlementId,
      hospitalId: s.hospitalId,
      visitId: s.visitId,
      personId: s.personId,
      region: s.region,
      year: s.year,
      category: s.category,
      policy: s.policy,
      payouts: s.layers
        .filter((l) => l.payFen > 0)
        .map((l) => ({ layerId: l.layerId, kind: l.kind, fund: l.fund, amountFen: signed(l.payFen) })),
      fundPayFen: signed(s.fundPayFen),
      patientPayFen: signed(s.patientPayFen),
    };
  }
}
