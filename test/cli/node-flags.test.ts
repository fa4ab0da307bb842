/**
 * The V8 flags and the environment of a tallydb process are said once (src/cli/node-flags.ts) and repeated by the
 * launchers that cannot import them: `npm start` and the bin's shebang (and `npm run bench` for the environment).
 * They must say the same, and node must take them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { LAUNCH_ENV, NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const scripts = (): Record<string, string> => (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
const envWords = Object.entries(LAUNCH_ENV).map(([k, v]) => `${k}=${v}`).join(' ');

it('npm start runs the daemon with exactly LAUNCH_ENV and NODE_FLAGS', () => {
  const start = scripts()['start']!;
  const m = /&& (.*) node (.*) dist\/cli\/main\.js serve$/.exec(start);
  expect(m).not.toBeNull();
  expect(m![1]).toBe(envWords);
  expect(m![2]!.split(' ')).toEqual(NODE_FLAGS);
});

it("the tallydb bin's shebang passes exactly LAUNCH_ENV and NODE_FLAGS to node", () => {
  const first = readFileSync(path.join(root, 'src/cli/main.ts'), 'utf8').split('\n')[0]!;
  expect(first).toBe(`#!/usr/bin/env -S ${envWords} node ${NODE_FLAGS.join(' ')}`);
});

it('npm run bench runs the suite with LAUNCH_ENV', () => {
  expect(scripts()['bench']!.startsWith(`${envWords} node `)).toBe(true);
});

it('node accepts NODE_FLAGS (a mistyped V8 flag would stop the daemon at start)', () => {
  const out = execFileSync(process.execPath, [...NODE_FLAGS, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual(expect.arrayContaining([...NODE_FLAGS]));
});
