// The published JSON Schemas (apps/medaid/src/shared/schemas.ts) compiled with ajv, for tests that
// check what the service emits: `check(name, value)` gives the violations ([] when valid).
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { publishedSchemas } from '../../apps/medaid/src/shared/schemas.js';

export function schemaValidator(): (name: string, value: unknown) => string[] {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
  (addFormats as unknown as (a: Ajv2020) => void)(ajv);
  for (const s of publishedSchemas()) ajv.addSchema(s.schema);
  return (name, value) => {
    const validate = ajv.getSchema(`${name}.schema.json`);
    if (validate === undefined) throw new Error(`no published schema ${name}`);
    return validate(value) ? [] : (validate.errors ?? []).map((e) => `${name}${e.instancePath} ${e.message}`);
  };
}
