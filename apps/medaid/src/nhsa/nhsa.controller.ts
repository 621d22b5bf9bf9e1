// POST /nhsa/{infno}: the national platform's message format (国家医疗保障信息平台 接口报文) for HIS
// clients written against it. Always answered 200 with the platform's envelope once the caller is
// authorised (a hospital: only its own fixmedins_code); a refusal is `infcode` −1 with `err_msg`.
import { Body, Controller, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiParam, ApiTags } from '@nestjs/swagger';
import { Meta } from '../http/actor.js';
import type { CommandMeta } from '../shared/writer.js';
import { NHSA_TRANSACTIONS, NhsaGateway } from './gateway.js';

@ApiTags('national platform (NHSA)')
@Controller('nhsa')
export class NhsaController {
  constructor(private readonly gateway: NhsaGateway) {}

  @Post(':infno')
  @HttpCode(200)
  @ApiOperation({
    summary:
      'A transaction in the national platform format: 2401/2402 入院/出院办理, 2201 门诊挂号, 2303/2206 预结算, 2304/2207 结算, ' +
      '2305/2208 结算撤销, 2601 冲正; the envelope {infno, msgid, fixmedins_code, insuplc_admdvs, input} in, {infcode, err_msg, output} out',
  })
  @ApiParam({ name: 'infno', enum: NHSA_TRANSACTIONS })
  @ApiBody({ schema: { type: 'object', description: 'the platform envelope (see the README, "For HIS vendors")' } })
  exchange(@Param('infno') infno: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    return this.gateway.exchange(infno, body, meta);
  }
}
