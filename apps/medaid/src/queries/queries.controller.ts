// The list queries the console needs, answered from the projections on disk (DIR/ledger.sqlite,
// libs/ledger/src/projections.ts), never from a fold of the log: settlements by hospital, person,
// discharge date, category and status, newest first; persons by category. Keyset paging: each
// page gives the cursor of the next. The projections follow the log a batch behind (like the
// journal); each answer says up to which log position it is complete (`asOfPosition`).
// GET /v1/settlements/{hospitalId}/{visitId} stays the read-your-writes view of one visit. Both
// lists need an administrator's or an auditor's token.
import { Controller, Get, Query } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { unwrap } from '../http/errors.js';
import { validateInput } from '../shared/validation.js';
import { AlertQueryDto, DEFAULT_PAGE_ROWS, PersonQueryDto, SettlementQueryDto } from './queries.dto.js';
import { ListCategoryMembers, SearchAlerts, SearchSettlements } from './query.handlers.js';

@ApiTags('settlements')
@Controller('v1/settlements')
export class SettlementSearchController {
  constructor(private readonly queries: QueryBus) {}

  @Get()
  @ApiOperation({
    summary: 'Search settlements by hospital, person, discharge date range, category and status; newest first, cursor paging',
  })
  search(@Query() query: Record<string, unknown>) {
    const q = unwrap(validateInput(SettlementQueryDto, { ...query }));
    const filter = {
      hospitalId: q.hospitalId,
      personId: q.personId,
      category: q.category,
      status: q.status,
      from: q.from,
      to: q.to,
      before: q.cursor === undefined ? undefined : Number(q.cursor),
    };
    return this.queries.execute(new SearchSettlements(filter, Number(q.limit ?? DEFAULT_PAGE_ROWS)));
  }
}

@ApiTags('persons')
@Controller('v1/persons')
export class PersonListController {
  constructor(private readonly queries: QueryBus) {}

  @Get()
  @ApiOperation({ summary: 'Persons who hold (or held) a category, by person id, with their intervals of it; cursor paging' })
  list(@Query() query: Record<string, unknown>) {
    const q = unwrap(validateInput(PersonQueryDto, { ...query }));
    return this.queries.execute(new ListCategoryMembers(q.category, q.cursor ?? '', Number(q.limit ?? DEFAULT_PAGE_ROWS), q.asOf));
  }
}

@ApiTags('alerts')
@Controller('v1/alerts')
export class AlertListController {
  constructor(private readonly queries: QueryBus) {}

  @Get()
  @ApiOperation({
    summary:
      'Monitoring flags (HighMedicalCostFlagged: 防止因病返贫致贫动态监测) by region, category, threshold, person, status, date; newest first',
  })
  list(@Query() query: Record<string, unknown>) {
    const q = unwrap(validateInput(AlertQueryDto, { ...query }));
    const filter = {
      region: q.region,
      category: q.category,
      thresholdId: q.thresholdId,
      personId: q.personId,
      status: q.status,
      from: q.from,
      to: q.to,
      before: q.cursor === undefined ? undefined : Number(q.cursor),
    };
    return this.queries.execute(new SearchAlerts(filter, Number(q.limit ?? DEFAULT_PAGE_ROWS)));
  }
}
