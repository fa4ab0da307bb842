/**
 * An in-memory FileSystem with a power-loss model and fault injection, for durability tests.
 *
 * Power loss (`crash()`): every file reverts to the bytes it had at its last `sync()`, and every directory to the
 * entries it had at its last `syncDir()` — the weakest guarantees POSIX gives. A file created, written and synced
 * but whose directory was not synced disappears; a rename not followed by a directory sync is undone.
 * Faults (`inject`): the next matching operation fails with EIO or ENOSPC, optionally after writing some bytes.
 * A disk limit (`diskLimitBytes`) makes writes past it fail with ENOSPC after a partial write.
 */
import * as path from 'node:path';
import type { FileSystem, ReadableFile, WritableFile } from '../../src/storage/fs.js';

type Op = 'write' | 'sync' | 'rename' | 'syncDir' | 'truncate' | 'openWrite' | 'unlink';

interface Inode {
  data: Buffer;
  length: number;
  synced: Buffer;
}

interface Dir {
  entries: Map<string, number>;
  synced: Map<string, number>;
}

export interface Fault {
  op: Op;
  /** Default EIO. */
  code?: 'EIO' | 'ENOSPC';
  /** Only for paths matching this. */
  path?: RegExp;
  /** For writes: bytes that land before the failure. */
  partialBytes?: number;
  /** How many matching operations fail (default 1). */
  times?: number;
}

function errno(code: string, op: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} ${file}`), { code });
}

export class MemFs implements FileSystem {
  private readonly inodes = new Map<number, Inode>();
  private readonly dirs = new Map<string, Dir>();
  private nextInode = 1;
  private faults: Fault[] = [];
  diskLimitBytes = Infinity;
  /** Make every file sync take this long (a slow disk), so that concurrent requests queue behind it. */
  syncDelayMs = 0;
  /** Counts of operations, for assertions such as "group commit shares fsyncs". */
  readonly calls: Record<Op, number> = { write: 0, sync: 0, rename: 0, syncDir: 0, truncate: 0, openWrite: 0, unlink: 0 };
  /** Paths of successful file syncs, in order. */
  readonly syncLog: string[] = [];

  constructor() {
    this.dirs.set('/', { entries: new Map(), synced: new Map() });
  }

  inject(fault: Fault): void {
    this.faults.push({ times: 1, code: 'EIO', ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  private fault(op: Op, file: string): Fault | undefined {
    this.calls[op]++;
    const i = this.faults.findIndex((f) => f.op === op && (f.path === undefined || f.path.test(file)));
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    if (--f.times! <= 0) this.faults.splice(i, 1);
    return f;
  }

  /** A copy of everything as it is now (what a process crash, kill -9, leaves: the OS still has it all). */
  clone(): MemFs {
    const c = new MemFs();
    c.dirs.clear();
    for (const [k, d] of this.dirs) c.dirs.set(k, { entries: new Map(d.entries), synced: new Map(d.synced) });
    for (const [id, i] of this.inodes) c.inodes.set(id, { data: Buffer.from(i.data.subarray(0, i.length)), length: i.length, synced: Buffer.from(i.synced) });
    c.nextInode = this.nextInode;
    return c;
  }

  /** A copy holding only what is durable (what power loss leaves). The original is untouched. */
  powerLossCopy(): MemFs {
    const c = this.clone();
    c.crash();
    return c;
  }

  /** Power loss, in place: drop everything not made durable. */
  crash(): void {
    for (const dir of this.dirs.values()) dir.entries = new Map(dir.synced);
    for (const [id, inode] of this.inodes) {
      inode.data = Buffer.from(inode.synced);
      inode.length = inode.synced.length;
      if (![...this.dirs.values()].some((d) => [...d.entries.values()].includes(id))) this.inodes.delete(id);
    }
  }

  usedBytes(): number {
    let n = 0;
    for (const i of this.inodes.values()) n += i.length;
    return n;
  }

  private split(file: string): [Dir, string, string] {
    const norm = path.resolve('/', file);
    const dirName = path.dirname(norm);
    const dir = this.dirs.get(dirName);
    if (dir === undefined) throw errno('ENOENT', 'open', dirName);
    return [dir, path.basename(norm), norm];
  }

  private inode(file: string): Inode {
    const [dir, name] = this.split(file);
    const id = dir.entries.get(name);
    if (id === undefined) throw errno('ENOENT', 'open', file);
    return this.inodes.get(id)!;
  }

  /** Direct access for tests that corrupt or truncate files. */
  bytes(file: string): Buffer {
    const i = this.inode(file);
    return i.data.subarray(0, i.length);
  }

  /** Replace a file's content, durably (as if written and synced long ago): for corruption tests. */
  setBytes(file: string, data: Buffer): void {
    const i = this.inode(file);
    i.data = Buffer.from(data);
    i.length = data.length;
    i.synced = Buffer.from(data);
  }

  async openWrite(file: string, create: boolean): Promise<WritableFile> {
    const [dir, name, norm] = this.split(file);
    const f = this.fault('openWrite', norm);
    if (f) throw errno(f.code!, 'open', norm);
    let id = dir.entries.get(name);
    if (id === undefined || create) {
      if (id === undefined && !create) throw errno('ENOENT', 'open', norm);
      if (id === undefined) {
        id = this.nextInode++;
        this.inodes.set(id, { data: Buffer.alloc(0), length: 0, synced: Buffer.alloc(0) });
        dir.entries.set(name, id);
      } else {
        const inode = this.inodes.get(id)!;
        inode.length = 0;
      }
    }
    const inode = this.inodes.get(id)!;
    let closed = false;
    return {
      write: async (buf, position) => {
        if (closed) throw errno('EBADF', 'write', norm);
        const fault = this.fault('write', norm);
        let n = buf.length;
        let fail: string | null = null;
        if (fault) {
          n = Math.min(n, fault.partialBytes ?? 0);
          fail = fault.code!;
        }
        const room = this.diskLimitBytes - this.usedBytes() + Math.max(0, inode.length - position);
        if (n > room) {
          n = Math.max(0, room);
          fail = 'ENOSPC';
        }
        const end = position + n;
        if (end > inode.data.length) {
          const grown = Buffer.alloc(Math.max(end, inode.data.length * 2));
          inode.data.copy(grown, 0, 0, inode.length);
          inode.data = grown;
        }
        if (position > inode.length) inode.data.fill(0, inode.length, position);
        buf.copy(inode.data, position, 0, n);
        inode.length = Math.max(inode.length, end);
        if (fail !== null) throw errno(fail, 'write', norm);
        return n;
      },
      sync: async () => {
        if (this.syncDelayMs > 0) await new Promise((r) => setTimeout(r, this.syncDelayMs));
        const fault = this.fault('sync', norm);
        if (fault) throw errno(fault.code!, 'fsync', norm);
        inode.synced = Buffer.from(inode.data.subarray(0, inode.length));
        this.syncLog.push(norm);
      },
      truncate: async (length) => {
        const fault = this.fault('truncate', norm);
        if (fault) throw errno(fault.code!, 'truncate', norm);
        if (length < inode.length) inode.length = length;
      },
      close: async () => {
        closed = true;
      },
    };
  }

  openRead(file: string): ReadableFile {
    const inode = this.inode(file);
    const size = inode.length;
    return {
      size,
      read: (position, length) => Buffer.from(inode.data.subarray(position, Math.min(position + length, inode.length, size))),
      close: () => {},
    };
  }

  async readFile(file: string): Promise<Buffer> {
    return Buffer.from(this.bytes(file));
  }

  async rename(from: string, to: string): Promise<void> {
    const [fromDir, fromName, norm] = this.split(from);
    const [toDir, toName] = this.split(to);
    const fault = this.fault('rename', norm);
    if (fault) throw errno(fault.code!, 'rename', norm);
    const id = fromDir.entries.get(fromName);
    if (id === undefined) throw errno('ENOENT', 'rename', norm);
    fromDir.entries.delete(fromName);
    toDir.entries.set(toName, id);
  }

  async unlink(file: string): Promise<void> {
    const [dir, name, norm] = this.split(file);
    const fault = this.fault('unlink', norm);
    if (fault) throw errno(fault.code!, 'unlink', norm);
    if (!dir.entries.delete(name)) throw errno('ENOENT', 'unlink', norm);
  }

  async list(dir: string): Promise<string[]> {
    const norm = path.resolve('/', dir);
    const d = this.dirs.get(norm);
    if (d === undefined) return [];
    const subdirs = [...this.dirs.keys()].filter((k) => k !== norm && path.dirname(k) === norm).map((k) => path.basename(k));
    return [...d.entries.keys(), ...subdirs].sort();
  }

  async mkdirp(dir: string): Promise<void> {
    // Directory creation is treated as durable at once: the model's weak spots are file data and entries.
    const norm = path.resolve('/', dir);
    if (this.dirs.has(norm)) return;
    await this.mkdirp(path.dirname(norm));
    this.dirs.set(norm, { entries: new Map(), synced: new Map() });
  }

  async syncDir(dir: string): Promise<void> {
    const norm = path.resolve('/', dir);
    const fault = this.fault('syncDir', norm);
    if (fault) throw errno(fault.code!, 'fsync', norm);
    const d = this.dirs.get(norm);
    if (d === undefined) throw errno('ENOENT', 'fsync', norm);
    d.synced = new Map(d.entries);
  }

  async exists(file: string): Promise<boolean> {
    try {
      this.inode(file);
      return true;
    } catch {
      return false;
    }
  }

  async size(file: string): Promise<number> {
    return this.inode(file).length;
  }
}
