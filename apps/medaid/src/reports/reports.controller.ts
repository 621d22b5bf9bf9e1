// GET /v1/reports/{year}: the year report (医疗救助 年度统计), the same object as
// `medaid audit report --year Y --format json`. It comes from the report projection on disk
// (libs/ledger/src/report-tables.ts), written by the journal's follower with its checkpoint, and
// is built on a thread of its own. Before building, it waits (up to 5 s) for that follower to
// reach the end of the log as it was when the report was asked for, so a report includes every
// settlement acknowledged before it; if the journal lags further (it may, by design, under heavy
// load) the report is built as of its checkpoint, and `basis.position` says which. The last
// report of each year is answered again while the projection has not moved.
import { Controller, Get, Param } from '@nestjs/common';
import { ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { YearReport, parseReportYear } from '#domain';
import { rejected } from '../http/errors.js';
import { Ledger } from '../ledger/ledger.js';

/** How long a report waits for the journal to reach the end of the log. */
const CATCH_UP_MS = 5_000;

@ApiTags('reports')
@Controller('v1/reports')
export class ReportsController {
  /** The last report of each year, at the projection's position it was built at (at most 101 years). */
  private readonly built = new Map<number, { position: number; report: Promise<YearReport> }>();

  constructor(private readonly ledger: Ledger) {}

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
    await this.ledger.writer.catchUp(CATCH_UP_MS);
    const position = this.ledger.journal.report.checkpoint();
    const last = this.built.get(year);
    if (last !== undefined && last.position === position) return last.report;
    const report = this.ledger.reports.yearReport(year);
    this.built.set(year, { position, report });
    report.catch(() => this.built.get(year)?.report === report && this.built.delete(year));
    return report;
  }
}
