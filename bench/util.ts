/** bench/util.ts — what every benchmark script shares: numeric flags, order statistics, per-thread CPU time. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** `--name N` from the command line, or `fallback`. */
export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

export function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
}

/** The p-th percentile (nearest rank). */
export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/**
 * CPU time of every thread of this process, summed over the windows between `start()` and `stop()` calls (Linux
 * `/proc/self/task/<tid>/schedstat`: ns on a CPU, ns runnable but waiting for one); `available()` is false where
 * /proc has no such file. A thread that ends inside a window is not counted for that window.
 */
export class ThreadClock {
  private readonly run = new Map<string, number>();
  private readonly wait = new Map<string, number>();
  private at: Map<string, [number, number]> | null = null;
  wallMs = 0;
  private since = 0;

  static available(): boolean {
    return existsSync(`/proc/self/task/${process.pid}/schedstat`);
  }

  private static snapshot(): Map<string, [number, number]> {
    const out = new Map<string, [number, number]>();
    for (const tid of readdirSync('/proc/self/task')) {
      try {
        const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').trim().split(' ').map(Number);
        out.set(tid, [run!, wait!]);
      } catch {
        // The thread ended between the listing and the read.
      }
    }
    return out;
  }

  start(): void {
    this.at = ThreadClock.snapshot();
    this.since = performance.now();
  }

  stop(): void {
    const before = this.at!;
    for (const [tid, [run, wait]] of ThreadClock.snapshot()) {
      const [run0, wait0] = before.get(tid) ?? [0, 0];
      this.run.set(tid, (this.run.get(tid) ?? 0) + run - run0);
      this.wait.set(tid, (this.wait.get(tid) ?? 0) + wait - wait0);
    }
    this.wallMs += performance.now() - this.since;
    this.at = null;
  }

  /** One line: all threads' CPU against the cores' capacity, the main thread's on-CPU and waiting time. */
  summary(cores: number): string {
    const s = (ns: number): string => (ns / 1e9).toFixed(1);
    const main = String(process.pid);
    let all = 0;
    for (const ns of this.run.values()) all += ns;
    const others = all - (this.run.get(main) ?? 0);
    const wall = this.wallMs / 1000;
    return `${s(all)} core-s of CPU in ${wall.toFixed(1)} s (${((all / 1e9 / (wall * cores)) * 100).toFixed(0)}% of ${cores} cores): ` +
      `main thread ${s(this.run.get(main) ?? 0)} s on a CPU and ${s(this.wait.get(main) ?? 0)} s waiting for one, other threads ${s(others)} s`;
  }
}
