// Jest runs in native ESM mode (see package.json "test"): NestJS 12 ships ESM-only packages,
// which Jest can load only that way. ts-jest transpiles TypeScript, with decorator metadata.
export default {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  roots: ['<rootDir>/apps', '<rootDir>/libs', '<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  moduleNameMapper: {
    '^#domain$': '<rootDir>/libs/domain/src/index.ts',
    '^#event-store$': '<rootDir>/libs/event-store/src/index.ts',
    '^#event-store-sqlite$': '<rootDir>/libs/event-store-sqlite/src/index.ts',
    '^#event-store-esdb$': '<rootDir>/libs/event-store-esdb/src/index.ts',
    '^#event-store-postgres$': '<rootDir>/libs/event-store-postgres/src/index.ts',
    '^#kafka$': '<rootDir>/libs/kafka/src/index.ts',
    '^#ledger$': '<rootDir>/libs/ledger/src/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: {
    // Type-checking is `npm run typecheck` (run before the tests); here each file is only transpiled.
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json', transpilation: true }],
  },
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.cjs'],
};
