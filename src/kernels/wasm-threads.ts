// Thread dispatch for the WebAssembly kernels: the pool of workers, how many threads a call is worth,
// and how a call is cut into parts.
//
// Threads. The kernels take raw pointers, keep no global state and write only their outputs and the
// scratch they are given, so several threads can run them on one memory. setWasmThreads(n) (the public
// setThreads in backend.ts) compiles the shared-memory build (scripts/build-wasm.mjs), instantiates it
// here over a shared WebAssembly.Memory, and starts a pool of n − 1 workers that instantiate it again
// over the same memory (src/kernels/threads.ts). A call big enough to gain from threads then runs on
// that instance: the calling thread copies the operands in, the call is cut into parts — the kernels'
// *Part exports, part t of T (src/kernels/wasm/parallel.as) — that the threads claim as they come free,
// and the calling thread copies the results out. Every part owns disjoint output elements and sums each
// exactly as one thread would (a reduction axis is never split), so the results are bit-identical for
// every thread count and every assignment of parts to threads. Other calls (too small, streaming, or
// while no worker has started yet) run on the ordinary instance exactly as without threads.

import { KernelPool, MAX_PARTS, threadSupport } from "./threads.ts";
import { PART_EXPORTS, loadShared, wasmKernels, wasmUnavailableReason, type PartIndex } from "./wasm-loader.ts";
import { cur, threadedInstanceReady, useThreadedInstance } from "./wasm-memory.ts";

export { MAX_PARTS };

let pool: KernelPool | null = null;
let threadsReason: string | null = null;

/**
 * The smallest call, in multiply-adds (or input elements for max pooling), worth a second thread: below
 * it, handing out parts costs more than it saves. ReLU and max pooling's backward are never split
 * (minPooledStreaming) when their operands are copied: they stream a few bytes per flop and their copies in
 * and out of linear memory (on the calling thread) dominate; split, they only add cross-core cache traffic
 * and measured slower (bench/kernels.ts threads, LeNet-5 on 2 cores). On resident operands they are split
 * from 2^15 elements (LeNet-5's second ReLU and max pooling, 65,536 and 102,400: with each thread keeping its
 * chunk of the batch in its cache, 2-thread training gained 1–2.5% over 2^17, bench/train-ab.ts).
 */
const MIN_POOLED_WORK = 1 << 18;
const MIN_POOLED_ELEMENTS = 1 << 15;
let minPooledWork = MIN_POOLED_WORK;
let minPooledElements = MIN_POOLED_ELEMENTS;
let minPooledStreaming = Infinity;
/** Parts per thread for calls cut into even blocks (rows, planes…): a few, so a late thread finds some left. */
const PARTS_PER_THREAD = 2;

/**
 * Run the wasm kernels on n threads (n ≥ 1; validated by the caller). Returns a promise of the number of
 * threads running once the workers have started: n, or 1 where threads are unavailable (the reason is
 * then wasmThreadsUnavailable()). Until the workers are up, calls run on the threads already started
 * — with the same results, as for any thread count.
 *
 * A pool that is no longer wanted (n = 1, or another n) rests rather than ending: its workers sleep in
 * Atomics.wait (no CPU) for REST_MS, and a setWasmThreads of its size within that time takes it back as
 * it was. A fresh worker runs its first ~10 LeNet-5 steps at well under full speed (its JavaScript is not
 * yet compiled, and V8 compiles it on the same cores), so a program that alternates thread counts — the
 * benchmark's 1- and 2-thread turns, a page's thread control — would otherwise pay that on every switch.
 */
export function setWasmThreads(n: number): Promise<number> {
  const old = pool;
  pool = null;
  useThreadedInstance(null);
  // the running pool if it has n threads; else a resting pool of n, taken back before the old one is set
  // aside (which ends the one resting before it)
  const keep = old !== null && old.threads === n && old.failure === null;
  const woken = keep ? old : n > 1 ? wake(n) : null;
  if (old !== null && !keep) rest(old);
  if (n <= 1) {
    threadsReason = null;
    return Promise.resolve(1);
  }
  threadsReason =
    wasmKernels === null
      ? `the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}`
      : threadSupport();
  const shared = threadsReason === null ? loadShared() : threadsReason;
  if (typeof shared === "string") {
    threadsReason = shared;
    void woken?.close();
    return Promise.resolve(1);
  }
  let p = woken;
  if (p === null) {
    try {
      p = new KernelPool(
        {
          module: shared.module,
          memory: shared.memory,
          exports: shared.exports as unknown as Record<string, unknown>,
          names: PART_EXPORTS,
        },
        n,
      );
    } catch (e) {
      threadsReason = `the kernel workers could not be started: ${(e as Error).message}`;
      return Promise.resolve(1);
    }
  }
  pool = p;
  useThreadedInstance(shared);
  return p.started.then((started) => {
    if (pool === p && p.failure !== null) threadsReason = p.failure;
    return started;
  });
}

/** How long a pool no longer in use keeps its (sleeping) workers for a setWasmThreads of its size, in ms. */
const REST_MS = 30_000;
let resting: KernelPool | null = null;
let restTimer: ReturnType<typeof setTimeout> | null = null;

/** Set p aside (ending the pool resting before it), or end it now if some of its workers failed. */
function rest(p: KernelPool): void {
  endResting();
  if (p.failure !== null) {
    void p.close();
    return;
  }
  resting = p;
  restTimer = setTimeout(endResting, REST_MS);
  // a resting pool must not keep Node alive (its workers do not)
  (restTimer as { unref?: () => void }).unref?.();
}

/**
 * The resting pool if it has n threads (it is then no longer resting), else null; a pool of another size
 * rests on (n → m → n takes the n-pool back), until its time is up or another pool is set aside. A pool
 * whose workers failed to start while it rested ends: a new one may start where it did not.
 */
function wake(n: number): KernelPool | null {
  if (resting !== null && resting.failure !== null) endResting();
  return resting !== null && resting.threads === n ? takeResting() : null;
}

/** The resting pool (null: none), no longer resting. */
function takeResting(): KernelPool | null {
  const p = resting;
  resting = null;
  if (restTimer !== null) clearTimeout(restTimer);
  restTimer = null;
  return p;
}

function endResting(): void {
  void takeResting()?.close();
}

/** Threads the wasm kernels run on now: 1, or the calling thread plus the pool's workers that have started. */
export function wasmThreads(): number {
  return pool === null ? 1 : pool.running();
}

/** Threads asked for by the last setWasmThreads (1 when threads are unavailable). */
export function wasmThreadsRequested(): number {
  return pool === null ? 1 : pool.threads;
}

/** Why the last setWasmThreads(n > 1) runs on one thread (or fewer than n), or null. */
export function wasmThreadsUnavailable(): string | null {
  return threadsReason;
}

/**
 * For tests: send every call through the pool however small it is (true), or only the calls worth it
 * (false, the default). Results are the same either way; this only exercises the pool's paths.
 */
export function poolEveryCall(on: boolean): void {
  minPooledWork = on ? 0 : MIN_POOLED_WORK;
  minPooledElements = on ? 0 : MIN_POOLED_ELEMENTS;
  minPooledStreaming = on ? 0 : Infinity;
}

/** Parts of pooled calls that the workers (not the calling thread) ran, since the pool started; 0 without one. */
export function wasmWorkerParts(): number {
  return pool?.workerParts() ?? 0;
}

/** Threads a call of `work` units should be spread over: the pool's size, or 1 (no pool, or too small a call). */
export function threadsFor(work: number, minWork = minPooledWork): number {
  return pool !== null && threadedInstanceReady() && work >= minWork && pool.running() > 1 ? pool.threads : 1;
}

/** threadsFor a call over `n` input elements (max pooling's forward). */
export function threadsForElements(n: number): number {
  return threadsFor(n, minPooledElements);
}

/**
 * threadsFor a streaming call over `n` elements (ReLU, max pooling's backward, add): one thread unless
 * poolEveryCall — or, when its operands are resident (`resident`: no copies on the calling thread, see
 * wasm-memory.ts), as many as max pooling's forward gets.
 */
export function threadsForStreaming(n: number, resident = false): number {
  return threadsFor(n, resident ? minPooledElements : minPooledStreaming);
}

/** Parts for a call over `units` independent blocks on T threads: 1 on one thread, else `perThread` per thread. */
export function evenParts(units: number, T: number, perThread = PARTS_PER_THREAD): number {
  return T === 1 ? 1 : Math.max(1, Math.min(units, T * perThread, MAX_PARTS));
}

/**
 * Run part function `fn` as `parts` parts with these arguments after (t, T, ws): in turn on this thread
 * (scratch wsBase) when T = 1, else through the pool (thread i's scratch: wsBase + i · wsStride). Fixed
 * arity (the pool's MAX_ARGS), no rest array: nothing is allocated per call.
 */
export function runParts(
  fn: PartIndex,
  T: number,
  parts: number,
  wsBase: number,
  wsStride: number,
  a0 = 0,
  a1 = 0,
  a2 = 0,
  a3 = 0,
  a4 = 0,
  a5 = 0,
  a6 = 0,
  a7 = 0,
  a8 = 0,
  a9 = 0,
  a10 = 0,
  a11 = 0,
  a12 = 0,
  a13 = 0,
  a14 = 0,
  a15 = 0,
  a16 = 0,
  a17 = 0,
  a18 = 0,
  a19 = 0,
  a20 = 0,
  a21 = 0,
  a22 = 0,
  a23 = 0,
): void {
  if (T === 1 || pool === null) {
    const f = cur!.parts[fn];
    for (let t = 0; t < parts; t++) {
      f(
        t,
        parts,
        wsBase,
        a0,
        a1,
        a2,
        a3,
        a4,
        a5,
        a6,
        a7,
        a8,
        a9,
        a10,
        a11,
        a12,
        a13,
        a14,
        a15,
        a16,
        a17,
        a18,
        a19,
        a20,
        a21,
        a22,
        a23,
      );
    }
    return;
  }
  const a = pool.args;
  a[0] = a0;
  a[1] = a1;
  a[2] = a2;
  a[3] = a3;
  a[4] = a4;
  a[5] = a5;
  a[6] = a6;
  a[7] = a7;
  a[8] = a8;
  a[9] = a9;
  a[10] = a10;
  a[11] = a11;
  a[12] = a12;
  a[13] = a13;
  a[14] = a14;
  a[15] = a15;
  a[16] = a16;
  a[17] = a17;
  a[18] = a18;
  a[19] = a19;
  a[20] = a20;
  a[21] = a21;
  a[22] = a22;
  a[23] = a23;
  pool.run(fn, parts, wsBase, wsStride);
}
