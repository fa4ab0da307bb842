/**
 * test/support/specs.ts — small datasource definitions the validator and decoder property tests share: two
 * dimensions with both metric types and a dedup key of its own field; a dedup key that is also a dimension; one
 * dimension and no metrics. Each test resolves them under its own limits.
 */
export const SMALL_SPECS = [
  { name: 'a', dimensions: ['d0', 'd1'], metrics: [{ name: 'm0', type: 'int' }, { name: 'm1', type: 'float' }], dedupKey: 'id' },
  { name: 'b', dimensions: ['d0', 'd1'], metrics: [{ name: 'm0', type: 'int' }], dedupKey: 'd1' },
  { name: 'c', dimensions: ['d0'], metrics: [] },
];
