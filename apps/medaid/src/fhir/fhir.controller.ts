// GET /v1/settlements/{hospitalId}/{visitId}/fhir: the visit's current settlement as a FHIR R4
// Bundle (fhir.ts), for systems that speak FHIR. The same access as the settlement itself.
import { Controller, Get, Header, Inject, Param } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { SettledData, policyKey } from '#domain';
import type { EventStore } from '#event-store';
import { notFound } from '../http/errors.js';
import { GetPerson, GetVisit, STATE, STORE } from '../queries/query.handlers.js';
import type { DecisionState } from '../shared/decision-state.js';
import { readVisit, settledEvent } from '../shared/lookups.js';
import { settlementBundle } from './fhir.js';

@ApiTags('settlements')
@Controller('v1/settlements')
export class FhirController {
  constructor(
    private readonly queries: QueryBus,
    @Inject(STATE) private readonly state: DecisionState,
    @Inject(STORE) private readonly store: EventStore,
  ) {}

  @Get(':hospitalId/:visitId/fhir')
  @Header('content-type', 'application/fhir+json; charset=utf-8')
  @ApiOperation({
    summary:
      'The visit’s current settlement as FHIR R4: a Bundle of one ClaimResponse per payer (layer) and an ExplanationOfBenefit with the annual caps’ use (benefitBalance)',
  })
  async bundle(@Param('hospitalId') hospitalId: string, @Param('visitId') visitId: string) {
    const view = await this.queries.execute(new GetVisit(hospitalId, visitId));
    if (view === null) throw notFound(`settlement of visit ${hospitalId}/${visitId}`);
    const s = view.current;
    const settled = settledEvent(await readVisit(this.store, hospitalId, visitId), s.settlementId);
    const visitType = (settled?.data as SettledData | undefined)?.discharge.visitType ?? 'inpatient';
    const person = await this.queries.execute(new GetPerson(s.personId));
    const policy = this.state.registry.byKey.get(policyKey(s.policy.policyId, s.policy.version))?.policy;
    return settlementBundle({ settlement: s, policy, usedFen: person?.state.years[s.year]?.used ?? {}, visitType });
  }
}
