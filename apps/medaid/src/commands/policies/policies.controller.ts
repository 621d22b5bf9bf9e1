import { Body, Controller, Get, Param, Post, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Meta } from '../../http/actor.js';
import { notFound, unwrap } from '../../http/errors.js';
import type { CommandMeta } from '../../shared/writer.js';
import { GetPolicy, ListPolicies } from '../../queries/query.handlers.js';
import { PublishPolicy } from './policy.handlers.js';

interface StatusReply {
  status(code: number): unknown;
}

@ApiTags('policies')
@Controller('v1/policies')
export class PoliciesController {
  constructor(
    private readonly bus: CommandBus,
    private readonly queries: QueryBus,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Publish a policy version: 201 when new, 200 when identical to the published one' })
  @ApiBody({ schema: { type: 'object', description: 'A policy document (spec §3); see apps/medaid/assets/demo-policy.json' } })
  async publish(@Body() body: unknown, @Meta() meta: CommandMeta, @Res({ passthrough: true }) reply: StatusReply) {
    const { created, ...ref } = unwrap(await this.bus.execute(new PublishPolicy(body, meta)));
    reply.status(created ? 201 : 200);
    return ref;
  }

  @Get()
  @ApiOperation({ summary: 'Every published policy, in publication order' })
  list() {
    return this.queries.execute(new ListPolicies());
  }

  @Get(':policyId/:version')
  @ApiOperation({ summary: 'One published policy document' })
  async get(@Param('policyId') policyId: string, @Param('version') version: string) {
    const found = /^[1-9][0-9]{0,8}$/.test(version) ? await this.queries.execute(new GetPolicy(policyId, Number(version))) : null;
    if (found === null) throw notFound(`policy ${policyId} version ${version}`);
    return found;
  }
}
