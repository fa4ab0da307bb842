// Runs a worker thread's TypeScript entry from sources (tests, tsx) through tsx's require hook, which, unlike its
// import hooks, reaches worker threads on Node 20 (piscina loads compact/worker.ts the same way). Built code (dist/)
// starts the compiled .js entry directly and never loads this file.
require(require('node:worker_threads').workerData.entry);
