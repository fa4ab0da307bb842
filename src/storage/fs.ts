/**
 * storage/fs.ts — the file-system operations tallydb's storage uses, behind one interface.
 *
 * Invariant: the WAL, segments and manifest touch files only through `FileSystem`, so that tests can substitute
 * an implementation that injects faults (EIO, ENOSPC, short writes, failing fsync) and simulates power loss (bytes
 * and directory entries not yet fsynced vanish) — test/support/memfs.ts. `NodeFs` is the real one.
 *
 * Writes and syncs are asynchronous (libuv thread pool), which is what lets WAL group commit gather the batches
 * that arrive during an fsync. Segment reads are synchronous positional reads: a query reads a reader start to
 * end without yielding, like lmdb-js and SQLite reads.
 */
import * as fsp from 'node:fs/promises';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface WritableFile {
  /** Write `buf` at `position`; resolves with the bytes written (a short count is possible). */
  write(buf: Buffer, position: number): Promise<number>;
  /** Make written data durable (fdatasync). */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

export interface ReadableFile {
  readonly size: number;
  /** Read exactly `length` bytes at `position` (fewer only at end of file). */
  read(position: number, length: number): Buffer;
  close(): void;
}

export interface FileSystem {
  /** Open for writing; `create: true` creates or truncates, otherwise the file must exist. */
  openWrite(file: string, create: boolean): Promise<WritableFile>;
  openRead(file: string): ReadableFile;
  readFile(file: string): Promise<Buffer>;
  rename(from: string, to: string): Promise<void>;
  unlink(file: string): Promise<void>;
  /** Names in a directory; [] when it does not exist. */
  list(dir: string): Promise<string[]>;
  mkdirp(dir: string): Promise<void>;
  /** fsync a directory, making renames, creations and deletions in it durable. */
  syncDir(dir: string): Promise<void>;
  exists(file: string): Promise<boolean>;
  size(file: string): Promise<number>;
}

export class NodeFs implements FileSystem {
  async openWrite(file: string, create: boolean): Promise<WritableFile> {
    const h = await fsp.open(file, create ? 'w' : 'r+');
    return {
      write: async (buf, position) => (await h.write(buf, 0, buf.length, position)).bytesWritten,
      sync: () => h.datasync(),
      truncate: (length) => h.truncate(length),
      close: () => h.close(),
    };
  }

  openRead(file: string): ReadableFile {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    return {
      size,
      read(position, length) {
        const n = Math.max(0, Math.min(length, size - position));
        const buf = Buffer.allocUnsafe(n);
        let done = 0;
        while (done < n) {
          const got = fs.readSync(fd, buf, done, n - done, position + done);
          if (got === 0) break;
          done += got;
        }
        return done === n ? buf : buf.subarray(0, done);
      },
      close: () => fs.closeSync(fd),
    };
  }

  readFile(file: string): Promise<Buffer> {
    return fsp.readFile(file);
  }

  rename(from: string, to: string): Promise<void> {
    return fsp.rename(from, to);
  }

  unlink(file: string): Promise<void> {
    return fsp.unlink(file);
  }

  async list(dir: string): Promise<string[]> {
    try {
      return (await fsp.readdir(dir)).sort();
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  }

  async mkdirp(dir: string): Promise<void> {
    await fsp.mkdir(dir, { recursive: true });
  }

  async syncDir(dir: string): Promise<void> {
    const h = await fsp.open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  }

  async exists(file: string): Promise<boolean> {
    try {
      await fsp.access(file);
      return true;
    } catch {
      return false;
    }
  }

  async size(file: string): Promise<number> {
    return (await fsp.stat(file)).size;
  }
}

/** The process's one real file system: the registry of open directories (DIR_LOCKED) is keyed by it. */
export const NODE_FS: FileSystem = new NodeFs();

/** Write a whole buffer, looping over short writes; a write that makes no progress is an error. */
export async function writeFully(f: WritableFile, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const n = await f.write(done === 0 ? buf : buf.subarray(done), position + done);
    if (n <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    done += n;
  }
}

/**
 * Publish `data` at `file` crash-safely: write `file.tmp`, fsync it, rename over `file`, fsync the directory.
 * After it resolves the new content is durable; a crash at any point leaves the old file or the new one, and at
 * most a `.tmp` leftover that open() removes. `step` names each completed step for crash tests.
 */
export async function publishFile(fsys: FileSystem, file: string, data: Buffer, step?: (name: string) => void | Promise<void>): Promise<void> {
  await writeSynced(fsys, file, data, step);
  await fsys.syncDir(path.dirname(file));
  await step?.('dir-synced');
}

/**
 * `publishFile` but for the directory's fsync, which the caller owes before it relies on the new name: several
 * files published into one directory share it (sealing a batch of buckets). Until then a crash may leave the old
 * file, the new one or a `.tmp` leftover.
 */
export async function writeSynced(fsys: FileSystem, file: string, data: Buffer, step?: (name: string) => void | Promise<void>): Promise<void> {
  const tmp = `${file}.tmp`;
  const f = await fsys.openWrite(tmp, true);
  try {
    await writeFully(f, data, 0);
    await step?.('temp-written');
    await f.sync();
    await step?.('temp-synced');
  } finally {
    await f.close();
  }
  await fsys.rename(tmp, file);
  await step?.('renamed');
}
