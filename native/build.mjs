// native/build.mjs — `npm install` runs this (the package's install script): build the C++ kernels with node-gyp.
// A failed build does not fail the install: tallydb then runs its TypeScript kernels (src/native/index.ts says
// which in `nativeStatus`), and this prints why. The test suite checks that the addon loads.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const cwd = fileURLToPath(new URL('.', import.meta.url));
const gyp = process.env.npm_config_node_gyp;
const r = gyp
  ? spawnSync(process.execPath, [gyp, 'rebuild'], { cwd, stdio: 'inherit' })
  : spawnSync('node-gyp', ['rebuild'], { cwd, stdio: 'inherit', shell: process.platform === 'win32' });
if (r.status !== 0) {
  console.warn(`tallydb: the native kernels did not build (${r.error?.message ?? `node-gyp exited with ${r.status}`}); ` +
    'tallydb runs its TypeScript kernels instead. Install g++, make and python3, then run `npm rebuild tallydb` (or `npm install` in a checkout).');
}
