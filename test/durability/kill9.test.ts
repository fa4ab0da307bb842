/**
 * kill -9 at random moments, 100 times: after every restart each acknowledged event is present exactly once and
 * each batch is all-or-nothing (a real process, the real file system). `npm run crash-loop -- --cycles N` runs it longer.
 */
import { expect, it } from 'vitest';
import { crashLoop } from '../support/crash-loop.js';

it('after 100 SIGKILLs at random moments every acknowledged batch is present exactly once, all-or-nothing', async () => {
  const report = await crashLoop(100);
  expect(report.cycles).toBe(100);
  expect(report.acked).toBeGreaterThan(500);
  expect(report.segments).toBeGreaterThan(0); // sealing and checkpointing were in play
}, 300_000);
