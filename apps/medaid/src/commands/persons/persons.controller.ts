import { Body, Controller, Get, HttpCode, Param, Post, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Meta } from '../../http/actor.js';
import { notFound, unwrap } from '../../http/errors.js';
import { invalid } from '../../shared/validation.js';
import { GetPerson } from '../../queries/query.handlers.js';
import type { CommandMeta } from '../../shared/writer.js';
import { AssignCategoryDto, GrantApprovalDto, PersonFactType, RecordDeathDto, RevokeCategoryDto, toPersonFact } from './person.dto.js';
import { RecordPersonFact, personView } from './person.handlers.js';

interface HeaderReply {
  header(k: string, v: string): unknown;
}

@ApiTags('persons')
@Controller('v1/persons/:personId')
export class PersonsController {
  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
  ) {}

  @Post('categories')
  @HttpCode(200)
  @ApiOperation({ summary: 'Assign a beneficiary category for an interval' })
  @ApiBody({ type: AssignCategoryDto })
  assign(@Param('personId') personId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    return this.record('AssignCategory', personId, body, meta);
  }

  @Post('category-revocations')
  @HttpCode(200)
  @ApiOperation({ summary: 'End a category from a date on' })
  @ApiBody({ type: RevokeCategoryDto })
  revoke(@Param('personId') personId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    return this.record('RevokeCategory', personId, body, meta);
  }

  @Post('approvals')
  @HttpCode(200)
  @ApiOperation({ summary: 'Record a 《同步结算申请审批表》 approval' })
  @ApiBody({ type: GrantApprovalDto })
  approve(@Param('personId') personId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    return this.record('GrantApproval', personId, body, meta);
  }

  @Post('death')
  @HttpCode(200)
  @ApiOperation({ summary: 'Record a death (死亡比对)' })
  @ApiBody({ type: RecordDeathDto })
  death(@Param('personId') personId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    return this.record('RecordDeath', personId, body, meta);
  }

  @Get()
  @ApiOperation({ summary: 'Categories, approvals and year-to-date bases and counters; the ETag is the stream revision' })
  async get(@Param('personId') personId: string, @Res({ passthrough: true }) reply: HeaderReply) {
    const entry = await this.queries.execute(new GetPerson(personId));
    if (entry === null) throw notFound(`person ${personId}`);
    reply.header('etag', `"${entry.revision}"`);
    return personView(personId, entry);
  }

  private async record(type: PersonFactType, personId: string, body: unknown, meta: CommandMeta) {
    // The person is named by the path; a body may repeat it but not contradict it.
    if (body !== null && typeof body === 'object' && 'personId' in body && (body as { personId: unknown }).personId !== personId) {
      throw unwrap(invalid([{ field: 'personId', problem: 'differs from the person in the path' }]));
    }
    const fields = body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...body, personId } : body;
    return unwrap(await this.bus.execute(new RecordPersonFact(unwrap(toPersonFact(type, fields)), meta)));
  }
}
