/** docs/errors.md lists exactly the codes of src/errors.ts, each with its HTTP status. */
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { ERROR_CODES } from 'tallydb';

it('docs/errors.md and ERROR_CODES list the same codes with the same statuses', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => [m[1], Number(m[2])]);
  const code = Object.entries(ERROR_CODES).map(([c, e]) => [c, e.status]);
  expect(new Set(rows.map(([c]) => c)).size).toBe(rows.length);
  expect([...rows].sort()).toEqual([...code].sort());
});
