// GET /v1/access-log?personId=&afterSeq=&limit=: who read whose data, for auditors (access.ts),
// in seq order, paged by afterSeq. Reading it is itself recorded.
import { Controller, Get, Inject, Query } from '@nestjs/common';
import { ApiOperation, ApiPropertyOptional, ApiQuery, ApiTags } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { unwrap } from '../http/errors.js';
import { withIntegers } from '../ledger/ledger.dto.js';
import { IsIdentifier, validateInput } from '../shared/validation.js';
import { AccessLog } from './access-log.js';

const MAX_PAGE = 1_000;
const DEFAULT_PAGE = 100;

export class AccessLogQueryDto {
  @ApiPropertyOptional({ example: 'p-1' }) @IsOptional() @IsIdentifier() personId?: string;
  @ApiPropertyOptional({ example: 0 }) @IsOptional() @IsInt() @Min(0) afterSeq?: number;
  @ApiPropertyOptional({ example: DEFAULT_PAGE, maximum: MAX_PAGE }) @IsOptional() @IsInt() @Min(1) @Max(MAX_PAGE) limit?: number;
}

@ApiTags('audit')
@Controller('v1/access-log')
export class AccessLogController {
  constructor(@Inject(AccessLog) private readonly log: AccessLog) {}

  @Get()
  @ApiOperation({ summary: 'The record of reads of personal data (who, when, what, from where), hash-chained; auditors only' })
  @ApiQuery({ name: 'personId', required: false })
  @ApiQuery({ name: 'afterSeq', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  entries(@Query() query: unknown) {
    const q = unwrap(validateInput(AccessLogQueryDto, withIntegers(query, ['afterSeq', 'limit'])));
    const limit = q.limit ?? DEFAULT_PAGE;
    const entries = this.log.query({ personId: q.personId, afterSeq: q.afterSeq, limit });
    return {
      entries,
      nextAfterSeq: entries.length > 0 ? entries[entries.length - 1]!.seq : (q.afterSeq ?? 0),
      more: entries.length === limit,
    };
  }
}
