// A pool of threads that run the WebAssembly kernels together on one shared WebAssembly.Memory.
//
// Each worker (a Node worker_thread, or a Web Worker in a browser) instantiates the same compiled module
// (the shared-memory build, see scripts/build-wasm.mjs) over the same memory as the calling thread, and
// then waits on a control block in a SharedArrayBuffer. A call costs no message at all, only atomics:
//
//   calling thread                                     every worker
//   FN, PARTS, WS_*, args = the call                   (waiting for GEN to change)
//   NEXT[c] = (tag(GEN+1), chunk c's parts) for each c;
//   GEN += 1; notify                           ──▶     wakes
//   claims parts (chunk 0 first), runs them            claims parts (its own chunk first), reads the
//                                                      call, runs them
//   waits until FINISHED = PARTS               ◀──     FINISHED += 1 after each part
//
// A call is cut into PARTS parts — the kernels' *Part(t, T, ws, …) exports (src/kernels/wasm/parallel.as):
// part t of T owns disjoint output elements and computes each exactly as one thread would, so the
// results are bit-identical whichever thread runs which part and however many threads there are. The
// parts form one contiguous chunk per thread, each with its counter NEXT[c]; thread i takes its own
// chunk's parts first (a compare-and-swap on NEXT[i]), so from one call to the next it works on the same
// images, which its core's cache still holds (claimParts), and then whatever is left of the others'. So
// parts are not fixed per thread: on a busy machine a worker that the OS has not scheduled yet simply
// takes no part, and the calling thread, which always takes parts too, never waits for more than the
// parts already running. Each NEXT[c] carries the call's generation in its high bits, so a worker still
// finishing an old call goes back to wait for the next one; and whatever a slow worker read before, it
// reads the call's function, PARTS and scratch only after it has claimed a part (claimParts), so it runs
// every part it claims as that part's call. Each thread uses its own scratch, WS_BASE + index · WS_STRIDE.
//
// A LeNet-5 training step makes ~20 kernel calls in a few milliseconds, so the wake-up latency of a
// sleeping thread (tens to hundreds of µs) matters: after a call, workers spin on GEN for SPIN_MS before
// they block in Atomics.wait, so the calls of a training or inference loop find them awake.
//
// Workers do not keep Node alive (unref, once started) and close() ends them. A kernel that throws in a
// worker (a trap: a bug) is reported to the calling thread, which throws it. Where threads cannot run,
// threadSupport() says why: no SharedArrayBuffer (a browser page that is not cross-origin isolated), a
// thread that may not block in Atomics.wait (a browser's main thread), no worker API.

import { CONTROL, claimParts, publishCall, workerSource, type WorkerReply } from "./thread-worker.ts";

const { GEN, CMD, FAILED, WORKER_PARTS, THREADS, FINISHED, READY, MESSAGE } = CONTROL;
const { NEXT, CHUNK_STRIDE, MAX_CHUNKS, EXIT, MESSAGE_CHARS, TAG_MASK } = CONTROL;

/** Arguments a call can pass after (t, T, ws). */
export const MAX_ARGS = CONTROL.MAX_ARGS;
/** Most parts one call can be cut into. */
export const MAX_PARTS = CONTROL.MAX_PARTS;

/**
 * How long a worker busy-waits for the next call before it blocks in Atomics.wait, in ms. Waking a
 * blocked thread takes tens to hundreds of µs (more in a VM, where an idle vCPU is halted), longer than
 * many calls last; within a training or inference loop the gaps between calls are well under this, so
 * the workers stay awake, and SPIN_MS after the last call they are asleep again.
 */
const SPIN_MS = 2;
/** Busy-wait iterations (one atomic load each) of the calling thread for parts still running on workers. */
const SPIN = 20000;

// The workers' program is kernelWorker (thread-worker.ts), started from its source text: the same text
// for Node (new Worker(text, { eval: true })) and browsers (a Blob URL). Built once, on first use.
let workerText: string | null = null;

/** A kernel export that the pool can run: (t, T, …args). */
export type PartFunction = (t: number, T: number, ...args: number[]) => void;

/** What the pool needs from a kernel module: the compiled module, its shared memory, and which exports it runs. */
export interface PoolKernels {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** The calling thread's own instance of `module` over `memory`. */
  exports: Record<string, unknown>;
  /** Export names the pool runs; run(fn, …) takes an index into this list. */
  names: readonly string[];
}

/** The little the pool uses of a Node Worker or a browser Worker. */
interface WorkerHandle {
  /** Resolves when the worker has started (true) or failed to (false; `failure` says why). */
  started: Promise<boolean>;
  failure: string | null;
  terminate(): Promise<void>;
}

interface NodeWorker {
  postMessage(m: unknown): void;
  on(event: "message", f: (m: WorkerReply) => void): void;
  on(event: "error", f: (e: Error) => void): void;
  on(event: "exit", f: (code: number) => void): void;
  unref(): void;
  terminate(): Promise<number>;
}
type NodeWorkerConstructor = new (src: string, opts: { eval: true; name?: string }) => NodeWorker;

interface NodeProcess {
  getBuiltinModule?: (id: string) => unknown;
  versions?: { node?: string };
}

function nodeProcess(): NodeProcess | null {
  const p = (globalThis as { process?: NodeProcess }).process;
  return typeof p === "object" && typeof p.versions?.node === "string" ? p : null;
}

function nodeWorkerClass(): NodeWorkerConstructor | null {
  const mod = nodeProcess()?.getBuiltinModule?.("node:worker_threads") as
    { Worker?: NodeWorkerConstructor } | undefined;
  return mod?.Worker ?? null;
}

/**
 * Null if this thread can run a pool, else why not. Checks what a pool needs: SharedArrayBuffer (browsers
 * need cross-origin isolation: COOP/COEP headers), permission to block in Atomics.wait (not a browser's
 * main thread), and a way to start workers.
 */
export function threadSupport(): string | null {
  if (typeof SharedArrayBuffer !== "function") {
    return (
      "SharedArrayBuffer is unavailable (a browser page needs cross-origin isolation: serve it with the headers " +
      "Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp)"
    );
  }
  if (typeof Atomics !== "object" || typeof Atomics.wait !== "function")
    return "this JavaScript engine has no Atomics.wait";
  try {
    // returns "timed-out" where blocking is allowed, throws where it is not
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0);
  } catch {
    return "this thread may not block in Atomics.wait (a browser's main thread): run handprop in a Web Worker to use threads";
  }
  if (nodeProcess() !== null) {
    if (nodeWorkerClass() === null)
      return "this Node has no process.getBuiltinModule (Node ≥ 20.16 is needed for threads)";
  } else if (typeof Worker !== "function" || typeof Blob !== "function" || typeof URL.createObjectURL !== "function") {
    return "this environment cannot start Web Workers";
  }
  return null;
}

function spawn(init: Record<string, unknown>): WorkerHandle {
  const NodeWorkerClass = nodeWorkerClass();
  const handle: WorkerHandle = { started: Promise.resolve(false), failure: null, terminate: () => Promise.resolve() };
  if (NodeWorkerClass !== null) {
    const w = new NodeWorkerClass((workerText ??= workerSource()), { eval: true, name: "handprop kernels" });
    handle.started = new Promise<boolean>((resolve) => {
      // referenced until it has started, so that `await setThreads(n)` cannot end the process early
      w.on("message", (m) => {
        if (!m.ready) handle.failure = m.error ?? "unknown error";
        w.unref();
        resolve(m.ready);
      });
      w.on("error", (e) => {
        handle.failure ??= e.message;
        resolve(false);
      });
      w.on("exit", () => {
        handle.failure ??= "the worker exited";
        resolve(false);
      });
    });
    handle.terminate = () => w.terminate().then(() => undefined);
    w.postMessage(init);
  } else {
    const url = URL.createObjectURL(new Blob([(workerText ??= workerSource())], { type: "text/javascript" }));
    const w = new Worker(url, { name: "handprop kernels" });
    URL.revokeObjectURL(url);
    handle.started = new Promise<boolean>((resolve) => {
      w.onmessage = (e: MessageEvent<WorkerReply>) => {
        if (!e.data.ready) handle.failure = e.data.error ?? "unknown error";
        resolve(e.data.ready);
      };
      w.onerror = (e) => {
        handle.failure ??= e.message;
        resolve(false);
      };
    });
    handle.terminate = () => {
      w.terminate();
      return Promise.resolve();
    };
    w.postMessage(init);
  }
  return handle;
}

/** A pool of `threads − 1` workers plus the calling thread. */
export class KernelPool {
  /** The next call's arguments (after t, T and ws): fill, then run(). */
  readonly args: Float64Array;
  /** Resolves with the number of threads that started (the calling thread included) once every worker has started or failed. */
  readonly started: Promise<number>;
  /** Why some workers failed to start (null: none did). Set once `started` resolves. */
  failure: string | null = null;

  private readonly ctl: Int32Array;
  private readonly fns: PartFunction[];
  private readonly workers: WorkerHandle[] = [];
  private gen = 0;
  private closed = false;
  /** The first error a part threw on this thread during the current call. */
  private error: Error | null = null;
  private readonly keepError = (e: unknown): void => {
    this.error ??= e instanceof Error ? e : new Error(String(e));
  };

  /** Start threads − 1 workers (threads ≥ 2). Throws only if the workers cannot even be created. */
  constructor(
    readonly kernels: PoolKernels,
    readonly threads: number,
  ) {
    this.ctl = new Int32Array(new SharedArrayBuffer(4 * (NEXT + CHUNK_STRIDE * MAX_CHUNKS)));
    this.ctl[THREADS] = threads;
    this.args = new Float64Array(new SharedArrayBuffer(8 * MAX_ARGS));
    this.fns = kernels.names.map((n) => {
      const f = kernels.exports[n];
      if (typeof f !== "function") throw new Error(`handprop: the kernel module lacks ${n}`);
      return f as PartFunction;
    });
    for (let w = 1; w < threads; w++) {
      this.workers.push(
        spawn({
          module: kernels.module,
          memory: kernels.memory,
          control: this.ctl.buffer,
          args: this.args.buffer,
          index: w,
          names: kernels.names,
          spinMs: SPIN_MS,
        }),
      );
    }
    this.started = Promise.all(this.workers.map((w) => w.started)).then((ok) => {
      const failures = this.workers.map((w) => w.failure).filter((f) => f !== null);
      if (failures.length > 0)
        this.failure = `${failures.length} of ${this.workers.length} kernel workers failed to start: ${failures[0]}`;
      return 1 + ok.filter(Boolean).length;
    });
  }

  /** Parts the workers (not the calling thread) have run so far. */
  workerParts(): number {
    return Atomics.load(this.ctl, WORKER_PARTS);
  }

  /** Threads running now: the calling thread and the workers that have started. */
  running(): number {
    return this.closed ? 1 : 1 + Atomics.load(this.ctl, READY);
  }

  /**
   * Run kernels.names[fn] as `parts` parts (1 ≤ parts ≤ MAX_PARTS) with the arguments in `args`: each
   * thread claims parts until none is left, thread i with the scratch wsBase + i · wsStride (so the
   * caller reserves `threads` of them). Returns when every part is done.
   */
  run(fn: number, parts: number, wsBase: number, wsStride: number): void {
    const ctl = this.ctl;
    const g = (this.gen = (this.gen + 1) | 0);
    publishCall(ctl, CONTROL, g & TAG_MASK, fn, parts, wsBase, wsStride);
    Atomics.store(ctl, GEN, g);
    Atomics.notify(ctl, GEN);

    // this thread claims parts like any worker, keeping the first error to throw once the call is done
    this.error = null;
    const done = claimParts(ctl, CONTROL, g & TAG_MASK, this.fns, this.args, 0, this.keepError);
    let error = this.error as Error | null;
    // wait for the parts still running on workers
    if (done !== parts) {
      let d = Atomics.load(ctl, FINISHED);
      for (let i = 0; d !== parts && i < SPIN; i++) d = Atomics.load(ctl, FINISHED);
      while (d !== parts) {
        Atomics.wait(ctl, FINISHED, d);
        d = Atomics.load(ctl, FINISHED);
      }
    }
    if (Atomics.load(ctl, FAILED) !== 0) {
      Atomics.store(ctl, FAILED, 0);
      let text = "";
      for (let i = 0; i < MESSAGE_CHARS && ctl[MESSAGE + i] !== 0; i++) text += String.fromCharCode(ctl[MESSAGE + i]);
      error ??= new Error(`handprop: a kernel failed in a worker thread: ${text}`);
    }
    if (error !== null) throw error;
  }

  /** Stop the workers; resolves when they have exited. The pool cannot run calls afterwards. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    Atomics.store(this.ctl, CMD, EXIT);
    Atomics.store(this.ctl, GEN, (this.gen = (this.gen + 1) | 0));
    Atomics.notify(this.ctl, GEN);
    return Promise.all(this.workers.map((w) => w.terminate())).then(() => undefined);
  }
}
