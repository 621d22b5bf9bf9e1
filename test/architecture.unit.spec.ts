// The dependency rule, checked: the domain imports nothing but itself; the port imports no client
// library; exactly two files import better-sqlite3 (event store, ledger journal), one file @eventstore/db-client, one pg; exactly
// one file of the service picks the store adapter; nothing in libs/ knows NestJS.
import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from './support/service.js';

function sources(dir: string, withTests = false): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && (withTests || !f.endsWith('.spec.ts')))
    .map((f) => join(dir, f));
}

function imports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  return [
    ...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm),
    ...text.matchAll(/^\s*import\s+['"]([^'"]+)['"]/gm),
  ].map((m) => m[1]!);
}

describe('the dependency rule', () => {
  it('keeps the domain free of frameworks, I/O and other layers', () => {
    const files = sources('libs/domain/src');
    expect(files.length).toBeGreaterThan(3);
    for (const file of files) {
      for (const spec of imports(file)) expect(`${file} imports ${spec}`).toMatch(/ imports \.\/[a-z-]+\.js$/);
    }
  });

  it('keeps the domain free of import cycles: the event catalogue is imported, never importing back', () => {
    const graph = new Map(
      sources('libs/domain/src').map((f) => [
        f,
        imports(f)
          .filter((i) => i.startsWith('./'))
          .map((i) => join('libs/domain/src', i.replace(/\.js$/, '.ts'))),
      ]),
    );
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (path.includes(file)) {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' → '));
        return;
      }
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
    };
    for (const file of graph.keys()) if (!file.endsWith('index.ts')) visit(file, []);
    expect([...new Set(cycles)]).toEqual([]);
    expect(graph.get('libs/domain/src/events.ts')!.filter((f) => !f.endsWith('primitives.ts'))).toEqual([
      'libs/domain/src/calculation.ts',
      'libs/domain/src/policy.ts',
    ]);
  });

  it('keeps the domain free of clocks and randomness', () => {
    for (const file of sources('libs/domain/src')) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      expect(`${file}: ${/\b(Date\.now|new Date|Math\.random|performance\.now|process\.)/.exec(text)?.[0] ?? 'clean'}`).toBe(
        `${file}: clean`,
      );
    }
  });

  it('lets only the SQLite adapter, the ledger journal and the access log import better-sqlite3, and only the runtime pick the adapter', () => {
    const all = [...sources('libs'), ...sources('apps')];
    const importers = (name: string) => all.filter((f) => imports(f).includes(name)).map((f) => relative('.', f));
    // Two stores on SQLite, one file each: the event store's adapter (its connections), and the
    // ledger's journal with the query and year-report projections written in its transactions (ledger.sqlite);
    // and the access log (access-log.sqlite), each instance's record of reads, not of the log.
    expect(importers('better-sqlite3').sort()).toEqual([
      'apps/medaid/src/access-log/access-log.ts',
      'libs/event-store-sqlite/src/sqlite-connections.ts',
      'libs/ledger/src/projections.ts',
      'libs/ledger/src/report-tables.ts',
      'libs/ledger/src/sqlite-journal.ts',
    ]);
    expect(importers('#event-store-sqlite')).toEqual(['apps/medaid/src/infrastructure/runtime.ts']);
    // Loaded at run time by one file only: the ledger's journal thread, which reads the embedded
    // log itself once the runtime (having picked the SQLite store) hands it the file.
    const loaders = all
      .filter((f) => /\bimport\(\s*['"]#event-store-sqlite['"]\s*\)/.test(readFileSync(join(ROOT, f), 'utf8')))
      .map((f) => relative('.', f));
    expect(loaders).toEqual(['libs/ledger/src/journal-writer.worker.ts']);
  });

  it('lets only the EventStoreDB adapter module import its client, and at most the runtime pick that adapter', () => {
    // Tests included: the protocol test double and the adapter's tests talk to it through the adapter only.
    const everything = [...sources('libs', true), ...sources('apps', true), ...sources('test', true)];
    const importers = (name: string, files: string[]) => files.filter((f) => imports(f).includes(name)).map((f) => relative('.', f));
    expect(importers('@eventstore/db-client', everything)).toEqual(['libs/event-store-esdb/src/esdb-event-store.ts']);
    // The runtime loads the adapter only when a connection string asks for it (a dynamic import).
    const loaders = sources('apps').filter((f) => /\bimport\(\s*['"]#event-store-esdb['"]\s*\)/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect([...importers('#event-store-esdb', sources('apps')), ...loaders.map((f) => relative('.', f))]).toEqual([
      'apps/medaid/src/infrastructure/runtime.ts',
    ]);
  });

  it('lets only the PostgreSQL adapter module import pg, and only the runtime pick that adapter', () => {
    // Tests included: they reach the server through the adapter (test/support/postgres.ts) too.
    const everything = [...sources('libs', true), ...sources('apps', true), ...sources('test', true)];
    const importers = (name: string, files: string[]) => files.filter((f) => imports(f).includes(name)).map((f) => relative('.', f));
    expect(importers('pg', everything)).toEqual(['libs/event-store-postgres/src/postgres-event-store.ts']);
    const loaders = sources('apps').filter((f) =>
      /\bimport\(\s*['"]#event-store-postgres['"]\s*\)/.test(readFileSync(join(ROOT, f), 'utf8')),
    );
    expect([...importers('#event-store-postgres', sources('apps')), ...loaders.map((f) => relative('.', f))]).toEqual([
      'apps/medaid/src/infrastructure/runtime.ts',
    ]);
  });

  it('lets only libs/kafka/src/kafka-client.ts import kafkajs', () => {
    // Tests included: they reach the broker through the #kafka adapter too. Dynamic imports count as well.
    const everything = [...sources('libs', true), ...sources('apps', true), ...sources('test', true)];
    const dynamic = /\b(?:import|require)\s*\(\s*['"]kafkajs['"]\s*\)/;
    const importers = everything
      .filter((f) => imports(f).includes('kafkajs') || dynamic.test(readFileSync(join(ROOT, f), 'utf8')))
      .map((f) => relative('.', f));
    expect(importers).toEqual(['libs/kafka/src/kafka-client.ts']);
  });

  it('keeps NestJS out of libs/', () => {
    for (const file of sources('libs')) {
      for (const spec of imports(file)) expect(`${file} imports ${spec}`).not.toMatch(/ imports @nestjs\//);
    }
  });
});
