// Policy impact simulations over HTTP (admin or auditor): POST /v1/simulations queues a `whatif`
// job (simulation-jobs.ts) and answers 202 with its id; GET /v1/simulations/{id} shows its
// progress and, when it is done, its result (the same object as `medaid whatif --format json`).
import { Body, Controller, Get, Inject, Param, Post, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, IsArray, IsInt, IsObject, IsOptional, Max, Min } from 'class-validator';
import { validatePolicy, type Policy } from '#domain';
import { Meta } from '../http/actor.js';
import { Rejected, notFound, unwrap } from '../http/errors.js';
import { IsIdentifier, invalid, validateInput } from '../shared/validation.js';
import type { CommandMeta } from '../shared/writer.js';
import { MAX_PENDING_SIMULATIONS, SimulationJobs } from './simulation-jobs.js';

export const SIMULATIONS = Symbol('SimulationJobs');

export class SimulationRequestDto {
  @ApiProperty({ example: 2013, description: 'the year whose settlements are replayed' }) @IsInt() @Min(1900) @Max(2200) year!: number;
  @ApiPropertyOptional({ example: '360827', description: "default: the drafts' region" }) @IsOptional() @IsIdentifier() region?: string;
  @ApiProperty({ description: '1 to 10 policy documents (spec §3), compared side by side', type: 'array', items: { type: 'object' } })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(10)
  @IsObject({ each: true })
  drafts!: object[];
  @ApiPropertyOptional({ example: [600_000, 1_000_000], description: 'annual self-pay thresholds (fen): persons above each are counted' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(20)
  @IsInt({ each: true })
  @Min(0, { each: true })
  @Max(100_000_000_000, { each: true })
  thresholdsFen?: number[];
  @ApiPropertyOptional({ example: 20, description: 'how many of the largest changes per person to list (default 20)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000)
  top?: number;
}

interface StatusReply {
  status(code: number): unknown;
  header(name: string, value: string): unknown;
}

@ApiTags('simulations')
@Controller('v1/simulations')
export class SimulationsController {
  constructor(@Inject(SIMULATIONS) private readonly jobs: SimulationJobs) {}

  @Post()
  @ApiOperation({ summary: 'Queue a policy impact simulation (whatif): 202 with its id' })
  @ApiBody({ type: SimulationRequestDto })
  submit(@Body() body: unknown, @Meta() meta: CommandMeta, @Res({ passthrough: true }) reply: StatusReply) {
    const input = unwrap(validateInput(SimulationRequestDto, body));
    const drafts: Policy[] = input.drafts.map((raw, i) => {
      const policy = validatePolicy(raw);
      if (!policy.ok)
        throw new Rejected(400, {
          code: 'INVALID_POLICY',
          message: `drafts[${i}]: ${policy.error.message}`,
          details: policy.error.details.map((d) => ({ field: `drafts[${i}].${d.field}`, problem: d.problem })),
        });
      return policy.value;
    });
    const region = input.region ?? drafts[0]!.region;
    const foreign = drafts.findIndex((d) => d.region !== region);
    if (foreign >= 0)
      unwrap(
        invalid([{ field: `drafts[${foreign}].region`, problem: `is ${drafts[foreign]!.region}, not the simulation's region ${region}` }]),
      );
    const job = this.jobs.submit(
      drafts,
      { year: input.year, region, thresholdsFen: input.thresholdsFen ?? [], topChanges: input.top ?? 20 },
      meta.actor,
      Date.now(),
    );
    if (job === null) {
      reply.header('retry-after', '30');
      throw new Rejected(429, {
        code: 'RATE_LIMITED',
        message: `${MAX_PENDING_SIMULATIONS} simulations are queued or running; retry when one has finished`,
        details: [],
      });
    }
    reply.status(202);
    return job;
  }

  @Get(':simulationId')
  @ApiOperation({ summary: "A simulation's status and progress, and its result when it is done" })
  get(@Param('simulationId') simulationId: string) {
    const job = this.jobs.get(simulationId);
    if (job === null) throw notFound(`simulation ${simulationId}`);
    return job;
  }
}
