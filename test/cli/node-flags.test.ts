/**
 * The V8 flags of a tallydb process are said once (src/cli/node-flags.ts) and repeated by the launchers that
 * cannot import them: `npm start` and the bin's shebang. They must say the same, and node must take them.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

it('npm start runs the daemon with exactly NODE_FLAGS', () => {
  const start = (JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts['start']!;
  expect(start).toMatch(/&& node (.*) dist\/cli\/main\.js serve$/);
  expect(/&& node (.*) dist\/cli\/main\.js serve$/.exec(start)![1]!.split(' ')).toEqual(NODE_FLAGS);
});

it("the tallydb bin's shebang passes exactly NODE_FLAGS to node", () => {
  const first = readFileSync(path.join(root, 'src/cli/main.ts'), 'utf8').split('\n')[0]!;
  expect(first).toBe(`#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`);
});

it('node accepts NODE_FLAGS (a mistyped V8 flag would stop the daemon at start)', () => {
  const out = execFileSync(process.execPath, [...NODE_FLAGS, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual(expect.arrayContaining([...NODE_FLAGS]));
});
