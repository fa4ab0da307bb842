/**
 * bitmap.ts — the one module that loads the `roaring` addon (CRoaring); everything else imports bitmaps from here.
 *
 * Invariant: loading the addon never depends on the host program's command line. roaring finds its binary
 * through node-pre-gyp, which parses `process.argv` as its own options: a program started with `--dir ./data`
 * (tallydb's own daemon, or any program embedding tallydb) would have `--dir` read as node-pre-gyp's
 * `--directory` and fail to start. So the command line is hidden while the addon loads.
 */
import { createRequire } from 'node:module';
import type * as Roaring from 'roaring';

const require = createRequire(import.meta.url);
const argv = process.argv;
let loaded: typeof Roaring;
process.argv = argv.slice(0, 2);
try {
  loaded = require('roaring') as typeof Roaring;
} finally {
  process.argv = argv;
}

export const RoaringBitmap32 = loaded.RoaringBitmap32;
export type Bitmap = Roaring.RoaringBitmap32;
