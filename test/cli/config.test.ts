/** Daemon configuration: flags win over environment, environment over the config file, the file over defaults. */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { expect, it } from 'vitest';
import { resolveServeConfig, SERVE_DEFAULTS } from '../../src/cli/config.js';

it('defaults: ./data on 127.0.0.1:8080, fsync always, no tokens', () => {
  const c = resolveServeConfig({}, {});
  expect(c).toMatchObject({ dir: './data', host: '127.0.0.1', port: 8080, fsync: 'always', tokens: {} });
  expect(c.headBytes).toBe(SERVE_DEFAULTS.headBytes);
  expect(c.compactionWorkers).toBe(1);
  expect(resolveServeConfig({ 'compactionWorkers': '0' }, {}).compactionWorkers).toBe(0);
  expect(resolveServeConfig({}, { TALLYDB_COMPACTION_WORKERS: '2' }).compactionWorkers).toBe(2);
  expect(() => resolveServeConfig({}, { TALLYDB_COMPACTION_WORKERS: '-1' })).toThrow(/TALLYDB_COMPACTION_WORKERS/);
});

it('no query thread unless --query-port, TALLYDB_QUERY_PORT or the file names a port (0: any), never the main one', () => {
  expect(resolveServeConfig({}, {}).queryPort).toBeNull();
  expect(resolveServeConfig({ queryPort: '0' }, {}).queryPort).toBe(0);
  expect(resolveServeConfig({}, { TALLYDB_QUERY_PORT: '8081' }).queryPort).toBe(8081);
  expect(() => resolveServeConfig({ queryPort: '8080' }, {})).toThrow(/queryPort.*main listener/);
  expect(() => resolveServeConfig({ queryPort: '70000' }, {})).toThrow(/queryPort/);
  expect(() => resolveServeConfig({ queryPort: 'x' }, {})).toThrow(/--queryPort/);
});

it('the result cache is on unless --result-cache, TALLYDB_RESULT_CACHE or the file says off', () => {
  expect(resolveServeConfig({}, {}).resultCache).toBe(true);
  expect(resolveServeConfig({ resultCache: 'off' }, {}).resultCache).toBe(false);
  expect(resolveServeConfig({}, { TALLYDB_RESULT_CACHE: 'off' }).resultCache).toBe(false);
  expect(resolveServeConfig({ resultCache: 'on' }, { TALLYDB_RESULT_CACHE: 'off' }).resultCache).toBe(true);
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-cfg-'));
  try {
    const file = path.join(dir, 'tallydb.json');
    writeFileSync(file, JSON.stringify({ resultCache: false }));
    expect(resolveServeConfig({ config: file }, {}).resultCache).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  expect(() => resolveServeConfig({ resultCache: 'maybe' }, {})).toThrow(/--resultCache.*on or off/);
});

it('flags over environment over config file', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tallydb-cfg-'));
  try {
    const file = path.join(dir, 'tallydb.json');
    writeFileSync(file, JSON.stringify({ port: 7000, host: '0.0.0.0', fsync: 'none', dir: '/from/file', limits: { maxGroups: 5000 } }));
    const c = resolveServeConfig({ config: file, port: '9000' }, { TALLYDB_HOST: '127.0.0.2', TALLYDB_TOKENS: 'read:reader-secret-000001,writer-secret-0000002' });
    expect(c).toMatchObject({ port: 9000, host: '127.0.0.2', fsync: 'none', dir: '/from/file' });
    expect(c.limits.maxGroups).toBe(5000);
    expect(c.tokens).toEqual({ 'reader-secret-000001': ['read'], 'writer-secret-0000002': ['read', 'write'] });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('bad settings are OPTIONS_INVALID naming the setting and its source', () => {
  expect(() => resolveServeConfig({ port: 'eighty' }, {})).toThrow(/--port/);
  expect(() => resolveServeConfig({}, { TALLYDB_FSYNC: 'sometimes' })).toThrow(/fsync/);
  expect(() => resolveServeConfig({ token: ['short'] }, {})).toThrow(/--token.*16 characters/);
  expect(() => resolveServeConfig({ config: '/no/such/file.json' }, {})).toThrow(/--config/);
  try {
    resolveServeConfig({ port: '70000' }, {});
  } catch (e) {
    expect((e as { code: string }).code).toBe('OPTIONS_INVALID');
  }
});
