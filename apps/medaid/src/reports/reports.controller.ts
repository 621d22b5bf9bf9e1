// GET /v1/reports/{year}: the year report (医疗救助 年度统计), the same object as
// `medaid audit report --year Y --format json`. The report projection is kept in memory and
// caught up from the store's global log on each request (only the events appended since the last
// one are read), so a report always includes every settlement acknowledged before it was asked
// for, and costs O(new events + the year's settlements), not a fold of the whole log; when the log
// has not moved, the last report of that year is answered again. Nothing is folded until the
// first report is asked for. Known limit (issue 11): the first report of a service folds the
// whole log and keeps every active settlement's facts in memory; it is to become a projection on
// disk like the settlement search.
import { Controller, Get, Param } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { ReportState, YearReport, applyReportEvent, buildYearReport, initialReportState, parseReportYear } from '#domain';
import type { EventStore } from '#event-store';
import { rejected } from '../http/errors.js';
import { EventWriter } from '../shared/writer.js';

/** Events per read: a page is folded without yielding, so this bounds how long other requests wait (~30 ms). */
const PAGE_EVENTS = 1_000;

/** The report projection, caught up on demand; catch-ups run one at a time, in call order. */
export class ReportProjection {
  private readonly state: ReportState = initialReportState();
  private tail: Promise<unknown> = Promise.resolve();
  /** The last report of each year and the log position it was built at (at most 101 years). */
  private readonly built = new Map<number, { position: number; report: YearReport }>();

  constructor(private readonly store: EventStore) {}

  /**
   * The year's report over every event acknowledged before this call. Building it walks the year's
   * settlements (~0.3 s of CPU for 75,000), so it is rebuilt only when the log has moved since.
   */
  async report(year: number): Promise<YearReport> {
    const state = await this.current();
    const last = this.built.get(year);
    if (last !== undefined && last.position === state.position) return last.report;
    const report = buildYearReport(state, year);
    this.built.set(year, { position: state.position, report });
    return report;
  }

  /** The state with every event acknowledged before this call folded in. */
  current(): Promise<ReportState> {
    const caughtUp = this.tail.then(() => this.catchUp());
    this.tail = caughtUp.catch(() => undefined); // a failed read fails its request; the next one resumes from the last folded event
    return caughtUp;
  }

  private async catchUp(): Promise<ReportState> {
    for (;;) {
      const page = await this.store.readAll({ fromPosition: this.state.position, maxCount: PAGE_EVENTS });
      for (const e of page) applyReportEvent(this.state, e);
      if (page.length < PAGE_EVENTS) return this.state;
      await new Promise((next) => setImmediate(next)); // let settlements through between pages of a long catch-up
    }
  }
}

@ApiTags('reports')
@Controller('v1/reports')
export class ReportsController {
  private readonly projection: ReportProjection;

  constructor(writer: EventWriter) {
    this.projection = new ReportProjection(writer.store);
  }

  @Get(':year')
  @ApiOperation({
    summary:
      'The year report (医疗救助 年度统计): persons (人数) and person-times (人次) by category and visit type, amounts by layer and fund, ' +
      'fund usage (资金使用率), enrolment subsidies (资助参保); integer fen; only active settlements of that settlement year',
  })
  @ApiParam({ name: 'year', description: 'settlement year (of the discharge date), 2000–2100', example: '2012' })
  async get(@Param('year') yearText: string) {
    const year = parseReportYear(yearText);
    if (year === null) {
      throw rejected({
        code: 'VALIDATION_FAILED',
        message: 'year must be a year from 2000 to 2100',
        details: [{ field: 'year', problem: 'must be a year from 2000 to 2100' }],
      });
    }
    return this.projection.report(year);
  }
}
