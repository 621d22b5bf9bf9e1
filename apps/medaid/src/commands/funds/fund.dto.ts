// Allocating money to a fund (上级下拨 / 本级配套 / 结转) and listing the funds — an extension of the
// spec (README, "Funds").
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { ALLOCATION_SOURCES } from '#domain';
import { IsCalendarDate, IsFen, IsIdentifier, IsText } from '../../shared/validation.js';

export class AllocateFundDto {
  @ApiProperty({ example: '610100', description: 'fund code (基金支付类型), e.g. 610100 医疗救助基金' }) @IsText(64) fund!: string;
  @ApiProperty({ example: '360827', description: 'region (统筹区)' }) @IsIdentifier() region!: string;
  @ApiProperty({ example: 2012 }) @IsInt() @Min(2000) @Max(2100) year!: number;
  @ApiProperty({ enum: ALLOCATION_SOURCES, description: 'superior = 上级下拨, local = 本级配套, carryover = 结转' })
  @IsIn(ALLOCATION_SOURCES)
  source!: string;
  @ApiProperty({ example: 50_000_000, description: 'fen, > 0' }) @IsFen() @Min(1) amountFen!: number;
  @ApiProperty({
    example: '赣民字〔2012〕12号',
    description:
      'the decision or voucher the money came with; with fund, region and year it identifies the allocation (a re-post is idempotent)',
  })
  @IsText(200)
  reference!: string;
}

export class FundsQueryDto {
  @ApiPropertyOptional({ example: 2012 }) @IsOptional() @IsInt() @Min(2000) @Max(2100) year?: number;
  @ApiPropertyOptional({ example: '360827' }) @IsOptional() @IsIdentifier() region?: string;
}

export class GrantSubsidiesDto {
  @ApiProperty({ example: '360827', description: 'region (统筹区): the policy in force there says who gets how much' })
  @IsIdentifier()
  region!: string;
  @ApiProperty({ example: 2012, description: 'the insurance year the premium is for' }) @IsInt() @Min(2000) @Max(2100) year!: number;
  @ApiPropertyOptional({ example: '2012-01-01', description: 'the day categories are read on (default: 1 January of the year)' })
  @IsOptional()
  @IsCalendarDate()
  asOf?: string;
}
