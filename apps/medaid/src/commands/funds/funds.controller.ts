import { Body, Controller, Get, Post, Query, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { AllocateFund } from '#domain';
import { Meta } from '../../http/actor.js';
import { unwrap } from '../../http/errors.js';
import { validateInput } from '../../shared/validation.js';
import { ListFunds } from '../../queries/query.handlers.js';
import type { CommandMeta } from '../../shared/writer.js';
import { AllocateFundDto, FundsQueryDto, GrantSubsidiesDto } from './fund.dto.js';
import { GrantEnrolmentSubsidies } from './subsidy.handlers.js';
import { AllocateFundCommand } from './fund.handlers.js';

interface StatusReply {
  status(code: number): unknown;
}

@ApiTags('funds')
@Controller('v1/funds')
export class FundsController {
  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
  ) {}

  @Post('allocations')
  @ApiOperation({ summary: 'Record money allocated to a fund (上级下拨 / 本级配套 / 结转) (admin): 201 new, 200 identical re-post' })
  async allocate(@Body() body: AllocateFundDto, @Meta() meta: CommandMeta, @Res({ passthrough: true }) reply: StatusReply) {
    const input = unwrap(validateInput(AllocateFundDto, body)) as AllocateFund;
    const { allocation, created } = unwrap(await this.bus.execute(new AllocateFundCommand(input, meta)));
    reply.status(created ? 201 : 200);
    return allocation;
  }

  @Post('enrolment-subsidies')
  @ApiOperation({
    summary: 'Grant the enrolment subsidy (资助参保) of a year to every beneficiary of a region (admin); idempotent per person and year',
  })
  async subsidies(@Body() body: GrantSubsidiesDto, @Meta() meta: CommandMeta) {
    const input = unwrap(validateInput(GrantSubsidiesDto, body));
    return unwrap(await this.bus.execute(new GrantEnrolmentSubsidies(input.region, input.year, input.asOf ?? `${input.year}-01-01`, meta)));
  }

  @Get()
  @ApiOperation({
    summary: 'Every fund account (fund, region, year): allocated by source, received, paid, balance, usage rate (资金使用率, bp)',
  })
  list(@Query() query: FundsQueryDto) {
    const q = unwrap(validateInput(FundsQueryDto, normaliseQuery(query)));
    return this.queries.execute(new ListFunds(q.region, q.year));
  }
}

/** Query strings are text; a year that is all digits is compared as the number it is. */
function normaliseQuery(query: unknown): unknown {
  const q = { ...(query as Record<string, unknown>) };
  if (typeof q.year === 'string' && /^[0-9]{1,4}$/.test(q.year)) q.year = Number(q.year);
  return q;
}
