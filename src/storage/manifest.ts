/**
 * storage/manifest.ts — the manifest: the one file that says which datasources and segments exist.
 *
 * Invariant: the manifest on disk is always a complete, checksummed version — it is replaced by publishFile
 * (temp → fsync → rename → directory fsync), so a crash leaves the old version or the new one, never a mix. A
 * segment is part of the database exactly when the manifest lists it; files it does not list are leftovers.
 *
 *   MANIFEST = "TALLYDB-MANIFEST <version> <crc32c of body, 8 hex> <body length>\n" body
 *   body     = JSON { nextSegmentId, lsnFloor, datasources: [DatasourceSpec], segments: [SegmentEntry] }
 *
 * `lsnFloor` is an LSN at least as high as any sealed into a segment, ever: WAL LSNs must never be reused (replay
 * skips a record whose LSN a segment claims), also after the WAL and the segments that carried them are gone.
 */
import { crc32c } from '@node-rs/crc32';
import { TallyError } from '../errors.js';
import type { DatasourceSpec } from '../schema/datasource.js';

export const MANIFEST_FILE = 'MANIFEST';
export const MANIFEST_VERSION = 1;

export interface SegmentEntry {
  id: number;
  datasource: string;
  /** Path relative to the data directory. */
  file: string;
  minTs: number;
  maxTs: number;
  rows: number;
  bytes: number;
  /** WAL LSN committed when the rows were frozen: replay skips rows of this segment's minutes at or below it. */
  lsn: number;
  level: 'minute' | 'hour' | 'day';
}

export interface Manifest {
  nextSegmentId: number;
  lsnFloor: number;
  datasources: DatasourceSpec[];
  segments: SegmentEntry[];
}

export function emptyManifest(): Manifest {
  return { nextSegmentId: 1, lsnFloor: 0, datasources: [], segments: [] };
}

export function encodeManifest(m: Manifest): Buffer {
  const body = Buffer.from(JSON.stringify(m, null, 1));
  const header = `TALLYDB-MANIFEST ${MANIFEST_VERSION} ${crc32c(body).toString(16).padStart(8, '0')} ${body.length}\n`;
  return Buffer.concat([Buffer.from(header), body]);
}

export function decodeManifest(buf: Buffer): Manifest {
  const nl = buf.indexOf(0x0a);
  const fail = (why: string): never => {
    throw new TallyError('MANIFEST_CORRUPT', `MANIFEST: ${why}. The manifest is replaced atomically, so damage means the disk or another program changed it; restore it from a backup`, { reason: why });
  };
  if (nl < 0) fail('no header line');
  const m = /^TALLYDB-MANIFEST (\d+) ([0-9a-f]{8}) (\d+)$/.exec(buf.toString('utf8', 0, nl));
  if (m === null) fail('bad header line');
  if (Number(m![1]) !== MANIFEST_VERSION) fail(`format version ${m![1]}; this build reads ${MANIFEST_VERSION}`);
  const body = buf.subarray(nl + 1);
  if (body.length !== Number(m![3])) fail(`body is ${body.length} bytes; header says ${m![3]}`);
  if (crc32c(body).toString(16).padStart(8, '0') !== m![2]) fail('checksum mismatch');
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Manifest;
    if (!Array.isArray(parsed.datasources) || !Array.isArray(parsed.segments) || !Number.isSafeInteger(parsed.nextSegmentId) || !Number.isSafeInteger(parsed.lsnFloor)) fail('missing fields');
    return parsed;
  } catch (e) {
    if (e instanceof TallyError) throw e;
    return fail(`body does not parse: ${(e as Error).message}`);
  }
}
