// Identity numbers (证件号码), kept only as keyed pseudonyms: HMAC-SHA256 under the deployment's
// secret (`pseudonymKeyFile` of the --nhsa file), so that 1101 (人员信息获取) can find the person a
// HIS names by 身份证 without medaid holding the number. An office records which person a number is
// (POST /v1/persons/{personId}/identity, admin): one stream per pseudonym, `identity-{pseudonym}`,
// with one IdentityRegistered {personId, pseudonym} appended "no stream yet" — a number is one
// person's, whatever instance records it. The number itself is read, hashed and dropped.
import { createHmac } from 'node:crypto';
import { Body, Controller, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Matches } from 'class-validator';
import { ID_PATTERN } from '#domain';
import { WrongExpectedRevisionError, deterministicEventId } from '#event-store';
import { Meta } from '../http/actor.js';
import { rejected, unwrap } from '../http/errors.js';
import { validateInput } from '../shared/validation.js';
import { EventWriter } from '../shared/writer.js';
import type { CommandMeta } from '../shared/writer.js';
import { NHSA_CONFIG, NhsaConfig } from './config.js';

/** 身份证 (18, the last may be X) or another document's number: letters and digits, 6–30. */
export const CERTNO = /^[0-9A-Za-z]{6,30}$/;

export const pseudonymOf = (key: Buffer, certno: string) => createHmac('sha256', key).update(certno.trim().toUpperCase()).digest('hex');
export const identityStream = (pseudonym: string) => `identity-${pseudonym}`;

export interface IdentityRegisteredData {
  personId: string;
  pseudonym: string;
}

/** The person an identity number was recorded for, or undefined. */
export async function personOfIdentity(writer: EventWriter, key: Buffer, certno: string): Promise<string | undefined> {
  const [event] = await writer.store.readStream(identityStream(pseudonymOf(key, certno)), { maxCount: 1 });
  return (event?.data as IdentityRegisteredData | undefined)?.personId;
}

export class IdentityDto {
  @ApiProperty({ example: '360827195803151234', description: '证件号码; kept only as a keyed pseudonym, never stored or echoed' })
  @Matches(CERTNO, { message: 'must be an identity number (6–30 letters or digits)' })
  certno!: string;
}

@ApiTags('persons')
@Controller('v1/persons')
export class IdentityController {
  constructor(
    private readonly writer: EventWriter,
    @Inject(NHSA_CONFIG) private readonly config: NhsaConfig | null,
  ) {}

  @Post(':personId/identity')
  @HttpCode(200)
  @ApiOperation({ summary: 'Record which person an identity number is (for 1101 人员信息获取): kept only as a keyed pseudonym' })
  @ApiBody({ type: IdentityDto })
  async register(@Param('personId') personId: string, @Body() body: unknown, @Meta() meta: CommandMeta) {
    if (!ID_PATTERN.test(personId))
      throw rejected({
        code: 'VALIDATION_FAILED',
        message: 'personId is not an id',
        details: [{ field: 'personId', problem: 'is not an id' }],
      });
    const { certno } = unwrap(validateInput(IdentityDto, body));
    const key = this.config?.pseudonymKey;
    if (key === null || key === undefined)
      throw rejected({
        code: 'VALIDATION_FAILED',
        message: 'identity numbers need a pseudonym key: give pseudonymKeyFile in the --nhsa file',
        details: [{ field: 'certno', problem: 'cannot be kept: no pseudonym key configured' }],
      });
    const pseudonym = pseudonymOf(key, certno);
    const data: IdentityRegisteredData = { personId, pseudonym };
    const recorded = await personOfIdentity(this.writer, key, certno);
    if (recorded === personId) return { personId }; // recorded already: nothing to append
    if (recorded !== undefined) throw takenByAnother();
    try {
      await this.writer.append(
        identityStream(pseudonym),
        -1,
        [{ id: deterministicEventId('IdentityRegistered', pseudonym, personId), type: 'IdentityRegistered', data }],
        meta,
      );
    } catch (error) {
      if (!(error instanceof WrongExpectedRevisionError)) throw error;
      if ((await personOfIdentity(this.writer, key, certno)) !== personId) throw takenByAnother();
    }
    return { personId };
  }
}

const takenByAnother = () =>
  rejected({
    code: 'VALIDATION_FAILED',
    message: 'this identity number is recorded for another person',
    details: [{ field: 'certno', problem: 'is recorded for another person' }],
  });
