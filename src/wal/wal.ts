/**
 * wal/wal.ts — the write-ahead log writer: append-only files, group commit, fail-stop.
 *
 * Invariants:
 *  - `append` resolves only when its record is durable as the mode promises: `always` — written and fdatasync'ed;
 *    `interval` — written, fsynced within `intervalMs`; `none` — written to the OS.
 *  - A write that fails (EIO, ENOSPC, short) rejects every record of its group, and the file is cut back to the
 *    last whole record, so the next append starts clean and nothing unacknowledged is ever replayed.
 *  - An fsync that fails is fatal (fail-stop): after it, every pending and future append is rejected with
 *    STORAGE_FAILED until the engine is reopened and recovers from what is on disk. An fsync is never retried
 *    and reported as success — after a failed fsync the kernel may have dropped the dirty pages.
 *
 * Group commit: appends that arrive while a write+fsync is in flight queue up and go out together in the next
 * one — one write and one fsync for the whole group — so throughput grows with concurrency instead of being
 * capped at one batch per fsync.
 */
import * as path from 'node:path';
import { TallyError } from '../errors.js';
import { writeFully, type FileSystem, type WritableFile } from '../storage/fs.js';
import { frameRecordInto, RECORD_HEADER_BYTES, walFileHeader, WAL_HEADER_BYTES } from './record.js';
import { WAL_GROUP_BUFFER } from '../limits.js';

export type FsyncMode = 'always' | 'interval' | 'none';

export interface WalOptions {
  fsync: FsyncMode;
  /** fsync period of the `interval` mode. */
  intervalMs: number;
  /** Start a new file once the current one exceeds this. */
  segmentBytes: number;
  /** Called with the duration of each successful fsync, in seconds. */
  onSync?: (seconds: number) => void;
}

export function walFileName(seq: number): string {
  return `${String(seq).padStart(8, '0')}.log`;
}

export function walFileSeq(name: string): number | null {
  const m = /^(\d{8})\.log$/.exec(name);
  return m === null ? null : Number(m[1]);
}

interface Pending {
  /** The record's payload, or its encoding still under way (compression runs on the thread pool). */
  buf: Buffer | Promise<Buffer>;
  /** Bytes counted in the backlog for it until it is written. */
  bytes: number;
  lsn: number;
  resolve: (seq: number) => void;
  reject: (e: unknown) => void;
}

export class WalWriter {
  private queue: Pending[] = [];
  private queuedBytes = 0;
  private flushing: Promise<void> | null = null;
  private failure: TallyError | null = null;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The buffer groups are framed into, reused by each (see `frameGroup`). */
  private groupBuf = Buffer.alloc(0);

  private constructor(
    private readonly fsys: FileSystem,
    private readonly dir: string,
    private readonly opts: WalOptions,
    private file: WritableFile,
    private seqNo: number,
    private sizeBytes: number,
  ) {
    if (opts.fsync === 'interval') {
      this.timer = setInterval(() => void this.periodicSync(), opts.intervalMs);
      this.timer.unref();
    }
  }

  /** Start WAL file `seq` (recovery never appends to an old file: it always begins a fresh one). */
  static async open(fsys: FileSystem, dir: string, opts: WalOptions, seq: number, firstLsn: number): Promise<WalWriter> {
    await fsys.mkdirp(dir);
    const file = await WalWriter.createFile(fsys, dir, seq, firstLsn);
    return new WalWriter(fsys, dir, opts, file, seq, WAL_HEADER_BYTES);
  }

  private static async createFile(fsys: FileSystem, dir: string, seq: number, firstLsn: number): Promise<WritableFile> {
    const file = await fsys.openWrite(path.join(dir, walFileName(seq)), true);
    await writeFully(file, walFileHeader(firstLsn), 0);
    await file.sync();
    await fsys.syncDir(dir);
    return file;
  }

  /** The file records are appended to now. */
  get seq(): number {
    return this.seqNo;
  }

  /** Bytes waiting for the next group write (for backpressure). */
  get backlogBytes(): number {
    return this.queuedBytes;
  }

  get failed(): TallyError | null {
    return this.failure;
  }

  /**
   * Append one record's payload (or a promise of it: records are written in the order of `append` calls, whenever
   * their encodings finish), framed by the writer (record.ts); resolves with the file sequence number it landed in,
   * once durable per the mode. `bytes` is what the backlog counts for it while queued (its size, or an estimate
   * while it is encoded).
   */
  append(payload: Buffer | Promise<Buffer>, lsn: number, bytes = Buffer.isBuffer(payload) ? payload.length : 0): Promise<number> {
    if (this.failure !== null) return Promise.reject(this.failure);
    if (this.closed) return Promise.reject(new TallyError('ENGINE_CLOSED', 'the WAL is closed'));
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ buf: payload, bytes, lsn, resolve, reject });
      this.queuedBytes += bytes;
      if (this.flushing === null) this.flushing = this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        let group = this.queue;
        this.queue = [];
        this.queuedBytes -= group.reduce((n, p) => n + p.bytes, 0);
        // Encodings still under way finish first; one that failed fails its own append only.
        const settled = await Promise.allSettled(group.map((p) => p.buf));
        const bufs: Buffer[] = [];
        const ready: Pending[] = [];
        settled.forEach((s, i) => {
          if (s.status === 'fulfilled') {
            bufs.push(s.value);
            ready.push(group[i]!);
          } else {
            group[i]!.reject(s.reason);
          }
        });
        group = ready;
        if (group.length === 0) continue;
        if (this.failure !== null) {
          for (const p of group) p.reject(this.failure);
          continue;
        }
        const bytes = bufs.reduce((n, b) => n + RECORD_HEADER_BYTES + b.length, 0);
        try {
          if (this.sizeBytes > WAL_HEADER_BYTES && this.sizeBytes + bytes > this.opts.segmentBytes) await this.rotate(group[0]!.lsn);
          await this.writeGroup(this.frameGroup(bufs, bytes));
          const seq = this.seqNo;
          for (const p of group) p.resolve(seq);
        } catch (e) {
          for (const p of group) p.reject(e);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  /**
   * `payloads` framed as consecutive records (`bytes` in all), in the buffer the writer keeps when they fit it: the
   * view returned is valid until the next group is framed, and `flushLoop` writes each group before it frames the
   * next. A buffer kept warm is written into without a page fault (limits.ts WAL_GROUP_BUFFER).
   */
  private frameGroup(payloads: Buffer[], bytes: number): Buffer {
    let out = this.groupBuf;
    if (out.length < bytes) {
      out = Buffer.allocUnsafe(Math.max(bytes, Math.min(2 * out.length, WAL_GROUP_BUFFER.keptBytes)));
      if (out.length <= WAL_GROUP_BUFFER.keptBytes) this.groupBuf = out;
    }
    let at = 0;
    for (const p of payloads) at = frameRecordInto(p, out, at);
    return out.subarray(0, bytes);
  }

  private async writeGroup(buf: Buffer): Promise<void> {
    const start = this.sizeBytes;
    try {
      await writeFully(this.file, buf, start);
    } catch (e) {
      // Cut the partial record off so that nothing unacknowledged is replayed and the next append is clean.
      try {
        await this.file.truncate(start);
      } catch (e2) {
        throw this.fail(`truncating the WAL after a failed write: ${(e2 as Error).message}`);
      }
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC') throw new TallyError('DISK_FULL', `the disk is full; the batch was not written and not acknowledged (${(e as Error).message})`);
      throw new TallyError('STORAGE_IO_ERROR', `writing the WAL failed; the batch was not acknowledged (${(e as Error).message})`);
    }
    this.sizeBytes = start + buf.length;
    if (this.opts.fsync === 'always') await this.syncOrFail();
    else this.dirty = true;
  }

  private async syncOrFail(): Promise<void> {
    try {
      const started = performance.now();
      await this.file.sync();
      this.opts.onSync?.((performance.now() - started) / 1000);
      this.dirty = false;
    } catch (e) {
      throw this.fail(`fsync of the WAL failed: ${(e as Error).message}`);
    }
  }

  /** Enter fail-stop: remember the failure and reject everything queued. */
  private fail(message: string): TallyError {
    if (this.failure === null) {
      this.failure = new TallyError('STORAGE_FAILED', `${message}; writes are refused until the engine is reopened (recovery replays the WAL)`);
      for (const p of this.queue) p.reject(this.failure);
      this.queue = [];
      this.queuedBytes = 0;
    }
    return this.failure;
  }

  private async periodicSync(): Promise<void> {
    if (!this.dirty || this.failure !== null || this.closed) return;
    // Syncs run between group writes, never during one.
    while (this.flushing !== null) await this.flushing;
    if (!this.dirty || this.closed) return;
    try {
      await this.syncOrFail();
    } catch {
      // fail() recorded it; the next append reports it.
    }
  }

  private async rotate(firstLsn: number): Promise<void> {
    if (this.opts.fsync !== 'always' && this.dirty) await this.syncOrFail();
    await this.file.close();
    const next = this.seqNo + 1;
    this.file = await WalWriter.createFile(this.fsys, this.dir, next, firstLsn);
    this.seqNo = next;
    this.sizeBytes = WAL_HEADER_BYTES;
  }

  /** Wait for queued appends, sync what `interval`/`none` left unsynced, and close the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.flushing !== null) await this.flushing;
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    if (this.failure === null && this.dirty) {
      try {
        await this.syncOrFail();
      } catch {
        // reported by fail(); closing continues
      }
    }
    await this.file.close();
  }
}
