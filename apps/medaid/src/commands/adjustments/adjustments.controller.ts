// HTTP routes of adjustments (maker–checker). Every route needs a token: requesting, approving and
// rejecting an admin's, reading an admin's or an auditor's. The role is checked before the body,
// so a caller without the right role learns nothing about what it sent.
import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Meta } from '../../http/actor.js';
import { rejected, unwrap } from '../../http/errors.js';
import { validateInput } from '../../shared/validation.js';
import { EventWriter } from '../../shared/writer.js';
import type { CommandMeta } from '../../shared/writer.js';
import { AdjustmentRejectionDto, AdjustmentRequestDto, toAdjustmentInput, toApproval } from './adjustment.dto.js';
import { ApproveAdjustment, RejectAdjustment, RequestAdjustment, adjustmentView } from './adjustment.handlers.js';

interface HeaderReply {
  header(k: string, v: string): unknown;
}

@ApiTags('adjustments')
@Controller('v1/adjustments')
export class AdjustmentsController {
  constructor(
    private readonly bus: CommandBus,
    private readonly writer: EventWriter,
  ) {}

  @Post()
  @ApiOperation({
    summary: 'Request an adjustment of one layer of one settlement (admin; the maker). Changes nothing until another admin approves',
  })
  @ApiBody({ type: AdjustmentRequestDto })
  async request(@Body() body: unknown, @Meta() meta: CommandMeta, @Res({ passthrough: true }) reply: HeaderReply) {
    const adjustmentId = unwrap(await this.bus.execute(new RequestAdjustment(unwrap(toAdjustmentInput(body)), meta)));
    reply.header('location', `/v1/adjustments/${adjustmentId}`);
    return this.view(adjustmentId, meta);
  }

  @Post(':adjustmentId/approval')
  @HttpCode(200)
  @ApiOperation({ summary: "Approve an adjustment (admin other than the one who requested it; the checker): moves the person's counters" })
  async approve(@Param('adjustmentId') adjustmentId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    unwrap(toApproval(body));
    unwrap(await this.bus.execute(new ApproveAdjustment(adjustmentId, meta)));
    return this.view(adjustmentId, meta);
  }

  @Post(':adjustmentId/rejection')
  @HttpCode(200)
  @ApiOperation({ summary: 'Reject an adjustment (admin): it will never apply' })
  @ApiBody({ type: AdjustmentRejectionDto })
  async reject(@Param('adjustmentId') adjustmentId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    const { reason } = unwrap(validateInput(AdjustmentRejectionDto, body));
    unwrap(await this.bus.execute(new RejectAdjustment(adjustmentId, reason, meta)));
    return this.view(adjustmentId, meta);
  }

  @Get(':adjustmentId')
  @ApiOperation({ summary: 'An adjustment: its state and history with the actors (admin or auditor)' })
  async get(@Param('adjustmentId') adjustmentId: string, @Meta() meta: CommandMeta) {
    return this.view(adjustmentId, meta);
  }

  private async view(adjustmentId: string, meta: CommandMeta) {
    const view = await adjustmentView(this.writer, adjustmentId, meta.correlationId);
    if (view === null)
      throw rejected({ code: 'ADJUSTMENT_NOT_FOUND', message: `adjustment ${adjustmentId.slice(0, 64)} not found`, details: [] });
    return view;
  }
}
