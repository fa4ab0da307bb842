/**
 * The WAL writes records in the order they were appended, also when their encodings (compressed on the thread pool)
 * finish out of order; an encoding that fails fails its own append only, and nothing of it reaches the file.
 */
import { describe, expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { WalWriter, walFileName } from '../../src/wal/wal.js';
import { frameRecord, scanRecords, WAL_HEADER_BYTES } from '../../src/wal/record.js';

function deferred(): { promise: Promise<Buffer>; resolve: (b: Buffer) => void; reject: (e: Error) => void } {
  let resolve!: (b: Buffer) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<Buffer>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function recordsIn(fs: MemFs): string[] {
  const bytes = fs.openRead(`/wal/${walFileName(1)}`);
  const buf = bytes.read(0, bytes.size);
  const out: string[] = [];
  for (const step of scanRecords(buf, WAL_HEADER_BYTES)) if (step.kind === 'record') out.push(step.payload.toString());
  return out;
}

describe('WAL record order', () => {
  it('records land in append order when later encodings finish first; a failed encoding fails only its append', async () => {
    const fs = new MemFs();
    const wal = await WalWriter.open(fs, '/wal', { fsync: 'always', intervalMs: 100, segmentBytes: 1 << 20 }, 1, 1);
    const slow = deferred();
    const broken = deferred();
    const acks: string[] = [];
    const first = wal.append(frameRecord(Buffer.from('one')), 1).then(() => acks.push('one'));
    const second = wal.append(slow.promise.then(frameRecord), 2, 100).then(() => acks.push('two'));
    const third = wal.append(broken.promise.then(frameRecord), 3, 100).then(() => acks.push('three'), (e: Error) => acks.push(`three failed: ${e.message}`));
    const fourth = wal.append(Promise.resolve(frameRecord(Buffer.from('four'))), 4, 100).then(() => acks.push('four'));
    broken.reject(new Error('encoder broke'));
    await new Promise((r) => setTimeout(r, 10));
    slow.resolve(Buffer.from('two'));
    await Promise.all([first, second, third, fourth]);
    expect(recordsIn(fs)).toEqual(['one', 'two', 'four']);
    expect(acks).toContain('three failed: encoder broke');
    expect(acks.filter((a) => !a.startsWith('three'))).toEqual(expect.arrayContaining(['one', 'two', 'four']));
    expect(wal.backlogBytes).toBe(0);
    await wal.close();
  });
});
