// GET /v1/ledger: the journal's entries in seq order, paged, optionally those touching one account;
// GET /v1/ledger/balances: per account (and year), debits, credits and balance. Both read
// DIR/ledger.sqlite, which the ledger writer fills shortly after the events are recorded:
// `ledger.position` says up to which log position the answer is complete.
import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { unwrap } from '../http/errors.js';
import { validateInput } from '../shared/validation.js';
import { Ledger } from './ledger.js';
import { BalancesQueryDto, DEFAULT_LEDGER_PAGE, LedgerQueryDto, MAX_LEDGER_PAGE, withIntegers } from './ledger.dto.js';

@ApiTags('ledger')
@Controller('v1/ledger')
export class LedgerController {
  constructor(private readonly ledger: Ledger) {}

  @Get()
  @ApiOperation({ summary: 'Journal entries (总账分录) in seq order, each with its lines, prevHash and hash; paged by afterSeq' })
  @ApiQuery({
    name: 'account',
    required: false,
    description: 'e.g. fund/610100/360827/2013, hospital/h-county/receivable, funding/superior/360827/2013',
  })
  @ApiQuery({ name: 'afterSeq', required: false, type: Number, description: 'entries with seq above this; default 0' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: `1 to ${MAX_LEDGER_PAGE}; default ${DEFAULT_LEDGER_PAGE}` })
  entries(@Query() query: unknown) {
    const q = unwrap(validateInput(LedgerQueryDto, withIntegers(query, ['afterSeq', 'limit'])));
    const afterSeq = q.afterSeq ?? 0;
    const limit = q.limit ?? DEFAULT_LEDGER_PAGE;
    const entries = this.ledger.journal.entries(afterSeq, limit, q.account);
    return {
      entries,
      // The next page starts after the last entry shown; polling with it shows only new entries.
      nextAfterSeq: entries.length > 0 ? entries[entries.length - 1]!.seq : afterSeq,
      more: entries.length === limit,
      ledger: this.ledger.status(),
    };
  }

  @Get('balances')
  @ApiOperation({
    summary:
      'Per account and year: debitFen, creditFen and balanceFen = creditFen − debitFen (what a fund has left, what is owed to a hospital)',
  })
  @ApiQuery({
    name: 'year',
    required: false,
    type: Number,
    description: 'the year of the entries (a hospital account is shown per year of the entries on it)',
  })
  balances(@Query() query: unknown) {
    const { year } = unwrap(validateInput(BalancesQueryDto, withIntegers(query, ['year'])));
    const accounts = this.ledger.journal.balances(year).map((b) => ({ ...b, balanceFen: b.creditFen - b.debitFen }));
    const totals = accounts.reduce((t, b) => ({ debitFen: t.debitFen + b.debitFen, creditFen: t.creditFen + b.creditFen }), {
      debitFen: 0,
      creditFen: 0,
    });
    return { year: year ?? null, accounts, totals, ledger: this.ledger.status() };
  }
}
