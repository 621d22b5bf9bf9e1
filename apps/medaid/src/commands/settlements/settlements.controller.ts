import { Body, Controller, Get, Headers, HttpCode, Param, Post, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBody, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import { withApiKey } from '../../shared/command-answers.js';
import { Meta } from '../../http/actor.js';
import { notFound, unwrap } from '../../http/errors.js';
import { validateInput } from '../../shared/validation.js';
import { GetVisit } from '../../queries/query.handlers.js';
import type { CommandMeta } from '../../shared/writer.js';
import { DischargeDto, ReversalDto, toDischarge } from './settlement.dto.js';
import { PreviewDischarge, ReverseSettlement, SettleDischarge } from './settlement.handlers.js';

interface StatusReply {
  status(code: number): unknown;
  header(name: string, value: string): unknown;
}

const KEY_HEADER = 'idempotency-key';
const KEY_FIELD = '(header Idempotency-Key)';
const IdempotencyKeyHeader = () =>
  ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Decided once per key (per caller): a retry with the key gets the first answer, with Idempotent-Replayed: true',
  });

/** Marks an answer that came from the record of an earlier request with the same key. */
function markReplayed(reply: StatusReply, outcome: object): void {
  if ((outcome as { replayed?: unknown }).replayed === true) reply.header('idempotent-replayed', 'true');
}

@ApiTags('settlements')
@Controller('v1/settlements')
export class SettlementsController {
  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Settle a discharge (同步结算): 201 when new, 200 when the identical discharge was settled before' })
  @ApiBody({ type: DischargeDto })
  @IdempotencyKeyHeader()
  async settle(
    @Body() body: unknown,
    @Meta() meta: CommandMeta,
    @Headers(KEY_HEADER) key: string | undefined,
    @Res({ passthrough: true }) reply: StatusReply,
  ) {
    const keyed = unwrap(withApiKey(meta, key, KEY_FIELD));
    const answer = await this.bus.execute(new SettleDischarge(unwrap(toDischarge(body)), keyed));
    markReplayed(reply, answer);
    const outcome = unwrap(answer);
    reply.status(outcome.created ? 201 : 200);
    return outcome.result;
  }

  @Post('preview')
  @HttpCode(200)
  @ApiOperation({ summary: 'Preview a settlement (预结算): computes with the current state, records nothing' })
  @ApiBody({ type: DischargeDto })
  async preview(@Body() body: unknown) {
    return unwrap(await this.bus.execute(new PreviewDischarge(unwrap(toDischarge(body)))));
  }

  @Post(':hospitalId/:visitId/reversal')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reverse the active settlement of a visit (结算撤销)' })
  @ApiBody({ type: ReversalDto })
  @IdempotencyKeyHeader()
  async reverse(
    @Param('hospitalId') hospitalId: string,
    @Param('visitId') visitId: string,
    @Body() body: unknown,
    @Meta() meta: CommandMeta,
    @Headers(KEY_HEADER) key: string | undefined,
    @Res({ passthrough: true }) reply: StatusReply,
  ) {
    const keyed = unwrap(withApiKey(meta, key, KEY_FIELD));
    const { reason } = unwrap(validateInput(ReversalDto, body));
    const answer = await this.bus.execute(new ReverseSettlement(hospitalId, visitId, reason, keyed));
    markReplayed(reply, answer);
    return unwrap(answer);
  }

  @Get(':hospitalId/:visitId')
  @ApiOperation({ summary: 'Current state and history of a visit' })
  async get(@Param('hospitalId') hospitalId: string, @Param('visitId') visitId: string) {
    const view = await this.queries.execute(new GetVisit(hospitalId, visitId));
    if (view === null) throw notFound(`settlement of visit ${hospitalId}/${visitId}`);
    return view;
  }
}
