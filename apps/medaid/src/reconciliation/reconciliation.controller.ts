// GET /v1/reconciliation/{hospitalId}: 对账 totals of a hospital for a period (what 3201 compares),
// and …/details the records behind them (3202), as JSON or CSV. A hospital reads only its own; the
// office reads every hospital's. The answer waits (at most 5 s) for the lists to reach the end of
// the log as it was when asked, like the year report, and says how far they are (asOfPosition).
import { Controller, Get, Header, Param, Query, Res } from '@nestjs/common';
import { ApiOperation, ApiProperty, ApiPropertyOptional, ApiQuery, ApiTags } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';
import { rejected, unwrap } from '../http/errors.js';
import { Ledger } from '../ledger/ledger.js';
import { IsCalendarDate, validateInput } from '../shared/validation.js';
import { MAX_RECORDS, ReconciliationRecord, reconciliationRecords, recordsToCsv, totalsOf } from './reconciliation.js';

const CATCH_UP_MS = 5_000;
/** The longest period asked at once: a year and a day. */
const MAX_DAYS = 366;

export class ReconciliationQueryDto {
  @ApiProperty({ example: '2012-03-01', description: 'first day (Beijing time), inclusive' }) @IsCalendarDate() from!: string;
  @ApiProperty({ example: '2012-03-31', description: 'last day (Beijing time), inclusive' }) @IsCalendarDate() to!: string;
  @ApiPropertyOptional({ enum: ['json', 'csv'], description: 'details only; default json' })
  @IsOptional()
  @IsIn(['json', 'csv'])
  format?: 'json' | 'csv';
}

interface Reply {
  header(name: string, value: string): unknown;
}

/** Validates the period; the records of the hospital in it, and the lists' position they are as of. */
export async function periodRecords(ledger: Ledger, hospitalId: string, query: unknown) {
  const q = unwrap(validateInput(ReconciliationQueryDto, query));
  const days = (Date.parse(q.to) - Date.parse(q.from)) / 86_400_000;
  if (days < 0 || days >= MAX_DAYS)
    throw rejected({
      code: 'VALIDATION_FAILED',
      message: `the period must run forward and hold at most ${MAX_DAYS} days`,
      details: [{ field: 'to', problem: `must be on or after from, and at most ${MAX_DAYS - 1} days after it` }],
    });
  await ledger.writer.catchUp(CATCH_UP_MS);
  const asOfPosition = ledger.journal.projections.checkpoint();
  const records = reconciliationRecords(ledger.journal, hospitalId, q.from, q.to);
  if (records === null)
    throw rejected({
      code: 'VALIDATION_FAILED',
      message: `the period holds more than ${MAX_RECORDS} records; ask for a shorter one`,
      details: [{ field: 'to', problem: 'the period is too long for one answer' }],
    });
  return { q, records, asOfPosition };
}

@ApiTags('reconciliation')
@Controller('v1/reconciliation')
export class ReconciliationController {
  constructor(private readonly ledger: Ledger) {}

  @Get(':hospitalId')
  @ApiOperation({
    summary:
      '对账 totals of a hospital for a period (Beijing days): records (settlements + reversals, as 3201 counts), net medfee, fund pay and patient pay, by fund; integer fen',
  })
  @ApiQuery({ name: 'from', example: '2012-03-01' })
  @ApiQuery({ name: 'to', example: '2012-03-31' })
  async totals(@Param('hospitalId') hospitalId: string, @Query() query: unknown) {
    const { q, records, asOfPosition } = await periodRecords(this.ledger, hospitalId, query);
    return totalsOf(hospitalId, q.from, q.to, records, asOfPosition);
  }

  @Get(':hospitalId/details')
  @Header('cache-control', 'no-store')
  @ApiOperation({
    summary: 'The records behind the totals (3202 明细对账), in time order: JSON {items, asOfPosition}, or CSV with format=csv',
  })
  @ApiQuery({ name: 'from', example: '2012-03-01' })
  @ApiQuery({ name: 'to', example: '2012-03-31' })
  @ApiQuery({ name: 'format', required: false, enum: ['json', 'csv'] })
  async details(@Param('hospitalId') hospitalId: string, @Query() query: unknown, @Res({ passthrough: true }) reply: Reply) {
    const { q, records, asOfPosition } = await periodRecords(this.ledger, hospitalId, query);
    if (q.format === 'csv') {
      reply.header('content-type', 'text/csv; charset=utf-8');
      reply.header('content-disposition', `attachment; filename="reconciliation-${hospitalId}-${q.from}-${q.to}.csv"`);
      return recordsToCsv(records);
    }
    return { items: records satisfies ReconciliationRecord[], asOfPosition };
  }
}
