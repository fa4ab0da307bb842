/**
 * The WAL writes records in the order they were appended, also when their encodings (compressed on the thread pool)
 * finish out of order; an encoding that fails fails its own append only, and nothing of it reaches the file. Groups
 * are framed into one buffer the writer reuses: every record of every group reads back whole.
 */
import { describe, expect, it } from 'vitest';
import { MemFs } from '../support/memfs.js';
import { WalWriter, walFileName } from '../../src/wal/wal.js';
import { scanRecords, WAL_HEADER_BYTES } from '../../src/wal/record.js';
import { WAL_GROUP_BUFFER } from '../../src/limits.js';

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
    const first = wal.append(Buffer.from('one'), 1).then(() => acks.push('one'));
    const second = wal.append(slow.promise, 2, 100).then(() => acks.push('two'));
    const third = wal.append(broken.promise, 3, 100).then(() => acks.push('three'), (e: Error) => acks.push(`three failed: ${e.message}`));
    const fourth = wal.append(Promise.resolve(Buffer.from('four')), 4, 100).then(() => acks.push('four'));
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

  it('every record of successive groups reads back whole while the writer reuses its group buffer', async () => {
    const fs = new MemFs();
    const wal = await WalWriter.open(fs, '/wal', { fsync: 'always', intervalMs: 100, segmentBytes: 1 << 30 }, 1, 1);
    // Groups that grow the kept buffer, then smaller ones written into it over what the larger ones left, then one
    // larger than the buffer may be kept, then small ones again. Each payload's bytes name it, so a record framed
    // over another one's bytes, or cut short, does not read back equal.
    const sizes = [[10, 2000], [70_000, 5, 300_000], [3, 4], [1, 2, 3], [WAL_GROUP_BUFFER.keptBytes + 1], [7, 100_000], [9]];
    const want: string[] = [];
    let lsn = 0;
    for (const group of sizes) {
      const payloads = group.map((n) => {
        lsn++;
        const tag = `<${lsn}:${n}>`;
        return tag.repeat(Math.ceil(n / tag.length)).slice(0, Math.max(n, tag.length));
      });
      want.push(...payloads);
      // Appended together: one group.
      await Promise.all(payloads.map((p, i) => wal.append(Buffer.from(p), lsn - payloads.length + 1 + i)));
    }
    expect(recordsIn(fs)).toEqual(want);
    await wal.close();
  });
});
