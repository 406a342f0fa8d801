// The interleaved schedule: every system of a workload takes a turn in each round (A, B, C, A, B, C, …),
// and each round's ratio handprop ÷ peer compares two figures taken seconds apart. On a shared machine
// whose speed drifts by 2× within minutes, a ratio of medians measured one system after another mostly
// measures the drift; the median of per-round ratios cancels it, and their spread says how far to trust it.
//
// A turn is one untimed call (the caches, the JIT tiers and any thread pool get back to their steady state
// after the other systems' turns) and then a fixed number of timed calls, chosen once after warm-up so
// that a turn lasts about `turnSeconds`. A system whose single call takes longer than `slowCallSeconds`
// skips the untimed call and runs in the first `slowRounds` rounds only (such a system is so far behind
// that a handful of rounds measures it well enough, and it would otherwise take most of the run).

export type Role = "handprop" | "peer" | "ceiling";

export interface Contender {
  system: string;
  role: Role;
  /** Threads this contender runs on (for the ceiling's per-thread efficiency). */
  threads: number;
  /** Compare with handprop on the same thread count only (a peer that runs on several threads). */
  matchThreads?: boolean;
  /** Units (images, GFLOP, runs) one call processes. */
  unitsPerCall: number;
  /** Untimed, before each turn: e.g. set the thread count or the active backend. */
  prepare?(): Promise<void>;
  /** `warmup` untimed calls then `calls` timed ones; returns the timed calls' seconds. */
  turn(calls: number, warmup: number): Promise<number>;
  dispose?(): void;
}

export interface Workload {
  id: string;
  title: string;
  unit: string;
  contenders: Contender[];
  /** Systems that cannot run this workload, and why (rows with a note, no figures). */
  unavailable: { system: string; note: string }[];
}

export interface Spread {
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
  n: number;
}

/** Median, quartiles (linear interpolation between order statistics, NumPy's default), min and max. */
export function spread(values: readonly number[]): Spread {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return { median: NaN, q1: NaN, q3: NaN, min: NaN, max: NaN, n: 0 };
  const q = (p: number) => {
    const h = (n - 1) * p;
    const lo = Math.floor(h);
    return lo + 1 < n ? v[lo] + (h - lo) * (v[lo + 1] - v[lo]) : v[lo];
  };
  return { median: q(0.5), q1: q(0.25), q3: q(0.75), min: v[0], max: v[n - 1], n };
}

/** Per-round ratios a[r] ÷ b[r] over the rounds where both were measured (NaN marks a missing round). */
export function roundRatios(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  for (let r = 0; r < Math.min(a.length, b.length); r++) {
    if (Number.isFinite(a[r]) && Number.isFinite(b[r]) && b[r] > 0) out.push(a[r] / b[r]);
  }
  return out;
}

/**
 * Seconds of CPU time this process has used (user + system): for one-thread kernel A/Bs on an
 * oversubscribed machine, where wall-clock turns vary by 2× and CPU time far less (bench/ab.ts).
 */
export function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

export interface ScheduleOptions {
  rounds: number;
  /** Target length of a turn's timed calls, seconds. */
  turnSeconds: number;
  /** Untimed calls before calibrating each contender. */
  warmupCalls: number;
  maxCallsPerTurn: number;
  slowCallSeconds: number;
  slowRounds: number;
  log?: (line: string) => void;
}

export interface Measured {
  contender: Contender;
  callsPerTurn: number;
  slow: boolean;
  /** Units per second in each round; NaN where the contender did not run. */
  rates: number[];
  /** Why it stopped (an error in a turn), if it did. */
  error?: string;
}

/**
 * Runs the workloads' contenders in interleaved rounds: round r runs every workload's contenders in
 * order, one turn each. Calibration (warm-up, calls per turn) happens first, workload by workload.
 */
export async function runSchedule(workloads: Workload[], opts: ScheduleOptions): Promise<Map<Workload, Measured[]>> {
  const log = opts.log ?? (() => undefined);
  const out = new Map<Workload, Measured[]>();
  for (const w of workloads) {
    const ms: Measured[] = [];
    for (const c of w.contenders) {
      const m: Measured = { contender: c, callsPerTurn: 1, slow: false, rates: [] };
      try {
        await c.prepare?.();
        const seconds = await c.turn(1, opts.warmupCalls);
        m.slow = seconds > opts.slowCallSeconds;
        m.callsPerTurn = Math.max(
          1,
          Math.min(opts.maxCallsPerTurn, Math.round(opts.turnSeconds / Math.max(seconds, 1e-6))),
        );
      } catch (e) {
        m.error = firstLine(e);
      }
      ms.push(m);
    }
    out.set(w, ms);
  }
  for (let r = 0; r < opts.rounds; r++) {
    const t0 = performance.now();
    for (const w of workloads) {
      for (const m of out.get(w) ?? []) {
        if (m.error !== undefined || (m.slow && r >= opts.slowRounds)) {
          m.rates.push(NaN);
          continue;
        }
        try {
          await m.contender.prepare?.();
          const seconds = await m.contender.turn(m.callsPerTurn, m.slow ? 0 : 1);
          m.rates.push((m.callsPerTurn * m.contender.unitsPerCall) / seconds);
        } catch (e) {
          m.error = firstLine(e);
          m.rates.push(NaN);
        }
      }
    }
    log(`  round ${String(r + 1)}/${String(opts.rounds)} done (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  }
  return out;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}
