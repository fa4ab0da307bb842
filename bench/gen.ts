/** bench/gen.ts — the benchmark data generator lives in src/cli/generate.ts (the CLI ships it); re-exported here. */
export * from '../src/cli/generate.js';
