// What each kernel worker of the pool (threads.ts) runs: instantiate the kernel module over the shared
// memory, then claim and run parts of calls until told to exit.
//
// The pool starts workers from source text — `new Worker(text, {eval: true})` in Node, a Blob URL in a
// browser — so that no bundler or TypeScript loader has to find, compile or serve a separate worker file
// (the CLI registers tsx in-process, which a worker_thread does not inherit; Vite, the playground's Web
// Worker, and plain Node all start the same text). That text is `kernelWorker.toString()` (workerSource
// below): by the time it runs, this file has been compiled to JavaScript by whatever loaded it. Hence
// two rules for the function:
//   - it is self-contained: it reads nothing from this module (every constant arrives in `layout`, and
//     the one helper it shares with the calling thread, claimParts, as an argument, from its own text);
//   - compilers may wrap its inner functions in a `__name(fn, "name")` helper (esbuild's keepNames, as
//     tsx runs it), which workerSource defines as the identity.

/** Int32 slots of the pool's control block (a SharedArrayBuffer), and the limits of a call. */
export const CONTROL = {
  GEN: 0, // generation: incremented once per call (and by close)
  CMD: 1, // 0, or EXIT: the workers leave
  FN: 2, // index into the pool's function list
  PARTS: 3, // T of the current call
  WS_BASE: 4, // scratch of thread i: WS_BASE + i · WS_STRIDE (bytes)
  WS_STRIDE: 5,
  FAILED: 6, // set by a worker whose kernel threw; its message is in the MESSAGE slots
  WORKER_PARTS: 7, // parts run by workers so far (diagnostics and tests)
  THREADS: 8, // threads of the pool (the calling thread included), set once
  FINISHED: 16, // parts finished in the current call; on its own 64-byte line
  READY: 32, // workers that have started
  MESSAGE: 48, // MESSAGE_CHARS slots
  // NEXT + c · CHUNK_STRIDE, c < MAX_CHUNKS: chunk c's (tag << PART_BITS) | its parts not yet claimed (0:
  // none, also a closed word), each on its own line
  NEXT: 320,
  CHUNK_STRIDE: 16,
  MAX_CHUNKS: 64,
  EXIT: 1,
  MESSAGE_CHARS: 256,
  /** A call has at most 2^PART_BITS − 1 parts; the rest of a chunk's word is the generation's tag. */
  PART_BITS: 12,
  TAG_MASK: (1 << (31 - 12)) - 1,
  MAX_PARTS: (1 << 12) - 1,
  /** Arguments a call can pass after (t, T, ws). */
  MAX_ARGS: 24,
} as const;

export type ControlLayout = typeof CONTROL;

/** The one message a worker receives. */
export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  control: SharedArrayBuffer;
  args: SharedArrayBuffer;
  /** This worker's thread index (1 …): its scratch is WS_BASE + index · WS_STRIDE. */
  index: number;
  /** The kernel exports the pool runs, by index. */
  names: readonly string[];
  /** How long to busy-wait for the next call before blocking, in ms. */
  spinMs: number;
}

/** The one message a worker sends back. */
export interface WorkerReply {
  ready: boolean;
  error?: string;
}

type PartFunction = (t: number, T: number, ws: number, ...args: number[]) => void;

interface NodeParentPort {
  once(event: "message", listener: (init: WorkerInit) => void): void;
  postMessage(m: WorkerReply): void;
  close(): void;
}

interface BrowserWorkerScope {
  onmessage: ((e: MessageEvent<WorkerInit>) => void) | null;
  postMessage(m: WorkerReply): void;
  close(): void;
}

/**
 * The worker's whole program. `nodeRequire` is Node's require in a worker_thread started from text, null
 * in a Web Worker.
 */
export function kernelWorker(
  layout: ControlLayout,
  claim: typeof claimParts,
  nodeRequire: ((id: string) => unknown) | null,
): void {
  const { GEN, CMD, FAILED, READY, MESSAGE } = layout;
  const { EXIT, MESSAGE_CHARS, TAG_MASK } = layout;

  const run = (init: WorkerInit, post: (m: WorkerReply) => void): void => {
    const ctl = new Int32Array(init.control);
    const a = new Float64Array(init.args);
    const index = init.index;
    let fns: PartFunction[];
    try {
      const exports = new WebAssembly.Instance(init.module, { env: { memory: init.memory } }).exports;
      fns = init.names.map((n) => exports[n] as PartFunction);
      const missing = init.names.filter((_n, i) => typeof fns[i] !== "function");
      if (missing.length > 0) throw new Error("the kernel module lacks " + missing.join(", "));
    } catch (e) {
      post({ ready: false, error: e instanceof Error ? e.message : String(e) });
      return;
    }
    // a part that throws (a trap: a bug) leaves its message for the calling thread, before it counts as finished
    const report = (e: unknown): void => {
      const text = (e instanceof Error && e.stack !== undefined ? e.stack : String(e)).slice(0, MESSAGE_CHARS);
      for (let i = 0; i < MESSAGE_CHARS; i++) ctl[MESSAGE + i] = i < text.length ? text.charCodeAt(i) : 0;
      Atomics.store(ctl, FAILED, 1);
    };
    let seen = Atomics.load(ctl, GEN);
    Atomics.add(ctl, READY, 1);
    post({ ready: true });
    for (;;) {
      if (Atomics.load(ctl, CMD) === EXIT) return;
      // claim parts of call `seen` while there are any (the protocol: threads.ts)
      claim(ctl, layout, seen & TAG_MASK, fns, a, index, report);
      // wait for the next call: spin for spinMs, then sleep
      let g = Atomics.load(ctl, GEN);
      for (const until = performance.now() + init.spinMs; g === seen;) {
        for (let i = 0; g === seen && i < 1000; i++) g = Atomics.load(ctl, GEN);
        if (performance.now() > until) break;
      }
      while (g === seen) {
        Atomics.wait(ctl, GEN, seen);
        g = Atomics.load(ctl, GEN);
      }
      seen = g;
    }
  };

  if (nodeRequire !== null) {
    const { parentPort } = nodeRequire("node:worker_threads") as { parentPort: NodeParentPort };
    parentPort.once("message", (init) => {
      run(init, (m) => {
        parentPort.postMessage(m);
      });
      parentPort.close();
    });
  } else {
    const scope = globalThis as unknown as BrowserWorkerScope;
    scope.onmessage = (e) => {
      scope.onmessage = null;
      run(e.data, (m) => {
        scope.postMessage(m);
      });
      scope.close();
    };
  }
}

/**
 * Write a call of `parts` parts (1 ≤ parts ≤ MAX_PARTS) of function `fn` for the workers, tagged `tag`
 * (its generation & TAG_MASK): the calling thread's half of the protocol (threads.ts), next to claimParts,
 * which reads what it writes. The pool's previous call must be finished. Every chunk word is closed (0: no
 * part left) before the call's fields change, so no thread can claim a part while they are being written;
 * then each chunk's word is published as (tag << PART_BITS) | its parts. A thread decides to claim from the
 * word alone (claimParts), never from PARTS, which a thread of an earlier call may read mid-write.
 */
export function publishCall(
  ctl: Int32Array,
  layout: ControlLayout,
  tag: number,
  fn: number,
  parts: number,
  wsBase: number,
  wsStride: number,
): void {
  const { NEXT, CHUNK_STRIDE, MAX_CHUNKS, THREADS, FN, PARTS, WS_BASE, WS_STRIDE, FINISHED, PART_BITS } = layout;
  const slots = Math.min(ctl[THREADS], MAX_CHUNKS);
  for (let c = 0; c < slots; c++) Atomics.store(ctl, NEXT + c * CHUNK_STRIDE, 0);
  ctl[FN] = fn;
  ctl[PARTS] = parts;
  ctl[WS_BASE] = wsBase;
  ctl[WS_STRIDE] = wsStride;
  Atomics.store(ctl, FINISHED, 0);
  // a call of fewer parts than chunks uses fewer; the stores publish everything above
  const chunks = Math.min(slots, parts);
  for (let c = 0; c < chunks; c++) {
    const size = Math.floor(((c + 1) * parts) / chunks) - Math.floor((c * parts) / chunks);
    Atomics.store(ctl, NEXT + c * CHUNK_STRIDE, (tag << PART_BITS) | size);
  }
}

/**
 * Claim parts of the call tagged `tag` (its generation & TAG_MASK) and run them until none is left: the
 * loop of every worker and of the calling thread (threads.ts), thread `index` (0: the calling thread).
 *
 * The parts are cut into one contiguous chunk per thread (at most MAX_CHUNKS), each with its own word:
 * (tag << PART_BITS) | parts of the chunk not yet claimed, counted down (publishCall). Thread i claims its
 * own chunk first, in order, then what is left of the others'. The kernels cut their work the same way along
 * the batch (images, planes, element ranges), so with every thread running, thread i works on the same images
 * from layer to layer, which its core's cache still holds; a thread that falls behind still loses its
 * remaining parts to the others.
 *
 * Only a successful compare-and-swap on a word with parts left claims a part, and such a word belongs to the
 * call now running, which cannot end before this part is done. So the call's function, PARTS and scratch are
 * read after the claim, from the call that owns the part: a thread that read GEN long ago (its tag may even
 * have come round again after 2^19 calls) or that sees a newer call's PARTS before the words were closed can
 * neither run a part twice nor with another call's arguments. PARTS read before a claim only orders the visit.
 *
 * A part that throws is handed to onError before it counts as finished, and the loop goes on (the call must
 * finish: other threads are using the memory). A worker also counts its parts in WORKER_PARTS and wakes the
 * calling thread after the call's last part. Returns FINISHED after this thread's last part (0: it ran none).
 * Self-contained like kernelWorker, which receives it in its source text.
 */
export function claimParts(
  ctl: Int32Array,
  layout: ControlLayout,
  tag: number,
  fns: readonly PartFunction[],
  a: Float64Array,
  index: number,
  onError: (e: unknown) => void,
): number {
  const { NEXT, CHUNK_STRIDE, MAX_CHUNKS, THREADS, FN, PARTS, WS_BASE, WS_STRIDE, FINISHED, WORKER_PARTS } = layout;
  const { PART_BITS, MAX_PARTS } = layout;
  const visit = Math.min(ctl[THREADS], ctl[PARTS], MAX_CHUNKS);
  let done = 0;
  for (let k = 0; k < visit; k++) {
    const c = (index + k) % visit;
    const slot = NEXT + c * CHUNK_STRIDE;
    let v = Atomics.load(ctl, slot);
    while (v >>> PART_BITS === tag && (v & MAX_PARTS) > 0) {
      const w = Atomics.compareExchange(ctl, slot, v, v - 1);
      if (w !== v) {
        v = w;
        continue;
      }
      // claimed: the fields below are this call's, and stay so until its last part is done
      const parts = ctl[PARTS];
      const chunks = Math.min(ctl[THREADS], parts, MAX_CHUNKS);
      const t = Math.floor(((c + 1) * parts) / chunks) - (v & MAX_PARTS);
      const fn = fns[ctl[FN]];
      const ws = ctl[WS_BASE] + index * ctl[WS_STRIDE];
      try {
        // The 24 raw arguments of a kernel part, on one line.
        // prettier-ignore
        fn(t, parts, ws, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22], a[23]);
      } catch (e) {
        onError(e);
      }
      if (index > 0) Atomics.add(ctl, WORKER_PARTS, 1);
      done = Atomics.add(ctl, FINISHED, 1) + 1;
      if (index > 0 && done === parts) Atomics.notify(ctl, FINISHED);
      v = Atomics.load(ctl, slot);
    }
  }
  return done;
}

/** The text a worker is started from: kernelWorker, compiled as this file was, called with CONTROL and claimParts. */
export function workerSource(): string {
  const args = [JSON.stringify(CONTROL), claimParts.toString(), 'typeof require === "function" ? require : null'];
  return `"use strict";
const __name = (fn) => fn;
(${kernelWorker.toString()})(${args.join(", ")});
`;
}
