// A worker thread that loads the module named by workerData (as a pool loads its worker module) and reports its
// nice value. Plain CommonJS loading the module by require, as piscina's own worker does; `--import tsx` compiles it.
const { getPriority } = require('node:os');
const { parentPort, workerData } = require('node:worker_threads');

require(workerData);
parentPort.postMessage(getPriority());
