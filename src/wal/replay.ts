/**
 * wal/replay.ts — reading the WAL back at open: every whole record in order, the torn tail cut, corruption
 * reported with file and offset (or, on request, repaired by moving the damaged rest aside).
 *
 * Invariant: replay applies exactly the records that were whole on disk, each all-or-nothing, in LSN order.
 * Policy (as Prometheus): a record cut short at the end of the newest file is a torn write from a crash and is
 * cut off silently — it was never acknowledged in `always` mode. Anything else — a checksum mismatch, a damaged
 * length, an undecodable payload, a short record in an older file — is corruption: open stops with WAL_CORRUPT
 * naming the file and offset. With `repair: true` the records before the damage are kept and the rest of that file
 * and every later file are moved to wal/aside/ for inspection.
 */
import * as path from 'node:path';
import { TallyError } from '../errors.js';
import { writeFully, type FileSystem } from '../storage/fs.js';
import { checkWalFileHeader, decodeBatch, scanRecords, WAL_HEADER_BYTES, type BatchRecord } from './record.js';
import { walFileSeq } from './wal.js';

export interface ReplayResult {
  /** Sequence numbers of the files replayed, oldest first. */
  files: number[];
  /** Highest LSN seen. */
  maxLsn: number;
  /** Bytes cut off the newest file's torn tail. */
  tornBytes: number;
  /** Files (or tails) moved aside by a repair. */
  movedAside: string[];
}

export async function replayWal(
  fsys: FileSystem,
  dir: string,
  opts: { repair: boolean },
  onRecord: (rec: BatchRecord, seq: number) => void,
): Promise<ReplayResult> {
  const names = (await fsys.list(dir)).filter((n) => walFileSeq(n) !== null);
  const result: ReplayResult = { files: [], maxLsn: 0, tornBytes: 0, movedAside: [] };
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const seq = walFileSeq(name)!;
    const file = path.join(dir, name);
    const newest = i === names.length - 1;
    const buf = await fsys.readFile(file);
    const headerProblem = checkWalFileHeader(buf);
    if (headerProblem !== null) {
      if (newest && buf.length < WAL_HEADER_BYTES) {
        // A crash while creating the file: it never held a record.
        await fsys.unlink(file);
        await fsys.syncDir(dir);
        continue;
      }
      await corrupt(fsys, dir, names.slice(i), file, 0, headerProblem, opts, result);
      return result;
    }
    let cutAt = -1;
    for (const step of scanRecords(buf, WAL_HEADER_BYTES)) {
      if (step.kind === 'record') {
        let rec: BatchRecord;
        try {
          rec = decodeBatch(step.payload);
        } catch (e) {
          await corrupt(fsys, dir, names.slice(i), file, step.offset, `undecodable payload: ${(e as Error).message}`, opts, result);
          return result;
        }
        onRecord(rec, seq);
        if (rec.lsn > result.maxLsn) result.maxLsn = rec.lsn;
      } else if (step.kind === 'torn') {
        if (!newest) {
          await corrupt(fsys, dir, names.slice(i), file, step.offset, 'the file ends inside a record, and it is not the newest file', opts, result);
          return result;
        }
        cutAt = step.offset;
      } else if (step.kind === 'corrupt') {
        await corrupt(fsys, dir, names.slice(i), file, step.offset, step.reason, opts, result);
        return result;
      }
    }
    result.files.push(seq);
    if (cutAt >= 0) {
      const f = await fsys.openWrite(file, false);
      try {
        await f.truncate(cutAt);
        await f.sync();
      } finally {
        await f.close();
      }
      result.tornBytes = buf.length - cutAt;
    }
  }
  return result;
}

async function corrupt(
  fsys: FileSystem, dir: string, rest: string[], file: string, offset: number, reason: string,
  opts: { repair: boolean }, result: ReplayResult,
): Promise<void> {
  const rel = path.join('wal', path.basename(file));
  if (!opts.repair) {
    throw new TallyError('WAL_CORRUPT',
      `WAL corruption in ${rel} at offset ${offset}: ${reason}. Every record before it is intact. To keep them and move the damaged rest to wal/aside/, reopen with { repair: true }.`,
      { file: rel, offset, reason });
  }
  const aside = path.join(dir, 'aside');
  await fsys.mkdirp(aside);
  const buf = await fsys.readFile(file);
  // Keep the intact prefix; a damaged header keeps nothing of the file.
  const keep = offset === 0 ? 0 : offset;
  const tailName = `${path.basename(file)}.${offset}.aside`;
  const t = await fsys.openWrite(path.join(aside, tailName), true);
  await writeFully(t, buf.subarray(keep), 0);
  await t.sync();
  await t.close();
  result.movedAside.push(tailName);
  if (keep === 0) {
    await fsys.unlink(file);
  } else {
    const f = await fsys.openWrite(file, false);
    await f.truncate(keep);
    await f.sync();
    await f.close();
    result.files.push(walFileSeq(path.basename(file))!);
  }
  for (const later of rest.slice(1)) {
    await fsys.rename(path.join(dir, later), path.join(aside, `${later}.aside`));
    result.movedAside.push(`${later}.aside`);
  }
  await fsys.syncDir(aside);
  await fsys.syncDir(dir);
}
