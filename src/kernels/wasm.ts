// Loader and JS side of the WebAssembly SIMD kernels (src/kernels/wasm/*.as, built by
// scripts/build-wasm.mjs into kernels.generated.ts).
//
// Loading. The module is compiled and instantiated once, when this file is first imported (top-level
// await, so it also works on a browser's main thread, where synchronous compilation of large modules
// is not allowed). If the generated file is missing (the build has not run), or the engine lacks
// WebAssembly SIMD (checked with WebAssembly.validate on a ten-byte SIMD function), nothing fails:
// `wasmKernels` stays null, `wasmUnavailableReason` says why, and every caller keeps the pure-TS path.
//
// Memory. WebAssembly code can only read its own linear memory, not JS typed arrays. The design here:
// every NDArray stays an ordinary JS Float32Array (users and the other layers see nothing new, and no
// array handed out can ever be detached), and each kernel call copies its operands into one scratch
// arena in linear memory, runs, and copies the results out. The arena is reset at the start of every
// call, so nothing is owned across calls and nothing can leak; it grows (memory.grow) to the largest
// call seen and then stays put. The copies are O(inputs + outputs) against O(outputs · K) arithmetic:
// memcpy-speed (tens of GB/s), a few percent of LeNet-5's conv layers (`bench/kernels.ts copies`
// measures it). What a layer carries from forward to backward (Conv2D's input) stays in JS.
//
// Growing a WebAssembly.Memory detaches the ArrayBuffer behind every typed-array view of it. No view
// leaves this file, and every view is obtained through a ViewCache, which notices a new `memory.buffer`
// (by identity) and recreates its views, so a growth during one call never invalidates the next. The
// cached views (one cache per layer, one slot per operand) also mean the steady state allocates nothing.
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
// setWasmThreads(1) stops the workers.

import type { TypedArray } from "../nd/ndarray.ts";
import type { ConvGeometry } from "./im2col.ts";
import { KernelPool, MAX_PARTS, threadSupport } from "./threads.ts";

/** The exports of the kernel module (see src/kernels/wasm/*.as for their contracts). Pointers are byte offsets. */
export interface KernelExports {
  gemm(transA: number, transB: number, M: number, N: number, K: number, alpha: number, a: number, lda: number, b: number, ldb: number, beta: number, c: number, ldc: number, ws: number): void;
  gemmScratchBytes(transA: number, transB: number, M: number, K: number): number;
  convForward(
    N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number,
    padTop: number, padLeft: number, OH: number, OW: number, x: number, w: number, bias: number, y: number, ws: number,
  ): void;
  convBackward(
    N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number,
    padTop: number, padLeft: number, OH: number, OW: number, x: number, w: number, dy: number, dW: number, db: number, dx: number, ws: number,
  ): void;
  convScratchBytes(C: number, O: number, kh: number, kw: number, OH: number, OW: number): number;
  denseForward(N: number, F: number, O: number, x: number, w: number, bias: number, y: number, ws: number): void;
  denseBackward(N: number, F: number, O: number, x: number, w: number, dy: number, dW: number, db: number, dx: number, ws: number): void;
  denseScratchBytes(N: number, F: number): number;
  maxPoolForward(NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, OH: number, OW: number, x: number, y: number, arg: number): void;
  maxPoolBackward(n: number, dy: number, arg: number, dx: number, nx: number): void;
  reluForward(n: number, x: number, y: number): void;
  reluBackward(n: number, y: number, dy: number, dx: number): void;
  // Part t of T of a call, run with ws = the running thread's scratch (see wasm/parallel.as), and the scratch sizes.
  packA(transA: number, M: number, K: number, alpha: number, a: number, lda: number, apack: number): void;
  gemmPart(t: number, T: number, ws: number, transA: number, transB: number, M: number, N: number, K: number, alpha: number, a: number, lda: number, b: number, ldb: number, beta: number, c: number, ldc: number): void;
  gemmPartScratchBytes(transA: number, transB: number, M: number, N: number, K: number, T: number): number;
  convForwardPart(
    t: number, T: number, ws: number, N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number,
    padTop: number, padLeft: number, OH: number, OW: number, x: number, apack: number, bias: number, y: number,
  ): void;
  convBackwardPart(
    t: number, T: number, ws: number, dWParts: number, N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number,
    dh: number, dw: number, padTop: number, padLeft: number, OH: number, OW: number, x: number, wpackT: number, dy: number, dW: number, db: number, dx: number,
  ): void;
  convPackedBytes(C: number, O: number, kh: number, kw: number): number;
  convThreadScratchBytes(C: number, O: number, kh: number, kw: number, OH: number, OW: number): number;
  denseForwardPart(t: number, T: number, ws: number, N: number, F: number, O: number, x: number, w: number, bias: number, y: number): void;
  denseBackwardPart(t: number, T: number, ws: number, N: number, F: number, O: number, x: number, w: number, dy: number, dW: number, db: number, dx: number): void;
  denseThreadScratchBytes(N: number, F: number, T: number): number;
  maxPoolForwardPart(t: number, T: number, ws: number, NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, OH: number, OW: number, x: number, y: number, arg: number): void;
  maxPoolBackwardPart(t: number, T: number, ws: number, NC: number, inPlane: number, outPlane: number, dy: number, arg: number, dx: number): void;
  reluForwardPart(t: number, T: number, ws: number, n: number, x: number, y: number): void;
  reluBackwardPart(t: number, T: number, ws: number, n: number, y: number, dy: number, dx: number): void;
}

/** The exports a pool runs, in the order of the Part indices below. */
const PART_EXPORTS = [
  "gemmPart", "convForwardPart", "convBackwardPart", "denseForwardPart", "denseBackwardPart",
  "maxPoolForwardPart", "maxPoolBackwardPart", "reluForwardPart", "reluBackwardPart",
] as const satisfies readonly (keyof KernelExports)[];
const Part = { Gemm: 0, ConvForward: 1, ConvBackward: 2, DenseForward: 3, DenseBackward: 4, MaxPoolForward: 5, MaxPoolBackward: 6, ReluForward: 7, ReluBackward: 8 } as const;
type PartIndex = (typeof Part)[keyof typeof Part];

const REQUIRED_EXPORTS: readonly (keyof KernelExports)[] = [
  "gemm", "gemmScratchBytes", "convForward", "convBackward", "convScratchBytes",
  "denseForward", "denseBackward", "denseScratchBytes", "maxPoolForward", "maxPoolBackward", "reluForward", "reluBackward",
  "packA", "gemmPartScratchBytes", "convPackedBytes", "convThreadScratchBytes", "denseThreadScratchBytes", ...PART_EXPORTS,
];

// (module (func (result v128) (v128.const i32x4 0 0 0 0)))  — validates only where SIMD is supported
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 11,
]);

/** True if this engine runs WebAssembly with the fixed-width SIMD proposal. */
export function simdSupported(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const PAGE = 65536;
/** First byte the arena hands out: the module has no static data, and 0 must stay free as "no pointer". */
const ARENA_BASE = 1024;

/** A loaded kernel module: its exports, the memory it runs in, and the compiled module (for workers). */
export interface LoadedKernels {
  exports: KernelExports;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
}

/** The generated module, imported so that a missing file is an ordinary rejected promise. */
function importGenerated(): Promise<unknown> {
  // A computed specifier: tsc and eslint pass on a fresh clone where the file does not exist yet, and
  // Vite still bundles it (it turns `./wasm/${x}.ts` into a glob of the directory's .ts files).
  const name = "kernels.generated";
  return import(`./wasm/${name}.ts`);
}

/**
 * What to do about a missing or stale kernel module. From the sources (a checkout, tsx or Vite's dev
 * server) the file is rebuilt by a script; from the compiled package (dist/) the build always ships
 * it, so its absence means a copy packed without its prepack build.
 */
const fromSources = typeof import.meta.url === "string" && import.meta.url.endsWith(".ts");
const GENERATED = fromSources ? "src/kernels/wasm/kernels.generated.ts" : "handprop's dist/kernels/wasm/kernels.generated.js";
const REBUILD = fromSources
  ? "rebuild it with node scripts/build-wasm.mjs"
  : "this copy of handprop was packed without its build: reinstall handprop from the npm registry, or pack it again " +
    "from a checkout with `npm pack` (its prepack script builds the kernels); until then it runs on the TypeScript kernels";

/** Maximum pages of the shared variant's memory (scripts/build-wasm.mjs declares the same): 2 GiB, reserved up front. */
export const SHARED_MAX_PAGES = 32768;

/**
 * Compile and instantiate the kernels, or say (as a string) why they cannot be used. `importer` yields
 * the generated module ({wasmBase64, wasmSharedBase64}); tests pass stand-ins to exercise the fallbacks.
 * shared: instantiate the shared-memory variant over a new shared WebAssembly.Memory — the form that
 * workers can instantiate again over the same memory (this file's own instance is the non-shared one).
 */
export async function loadKernels(importer: () => Promise<unknown> = importGenerated, opts: { shared?: boolean } = {}): Promise<LoadedKernels | string> {
  if (!simdSupported()) {
    return "this JavaScript engine has no WebAssembly SIMD (Node ≥ 16.4, Chrome ≥ 91, Firefox ≥ 89 and Safari ≥ 16.4 have it): " +
      "handprop runs on its TypeScript kernels, ~15× slower";
  }
  let mod: unknown;
  try {
    mod = await importer();
  } catch {
    return `${GENERATED} is missing: ${fromSources ? "run `node scripts/build-wasm.mjs` (npm install does)" : REBUILD}`;
  }
  const key = opts.shared === true ? "wasmSharedBase64" : "wasmBase64";
  const b64 = typeof mod === "object" && mod !== null ? (mod as Record<string, unknown>)[key] : undefined;
  if (typeof b64 !== "string") return `${GENERATED} has no ${key} string: ${REBUILD}`;
  try {
    const module = await WebAssembly.compile(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    const memory = opts.shared === true ? new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 16 });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const missing = REQUIRED_EXPORTS.filter((k) => typeof instance.exports[k] !== "function");
    if (missing.length > 0) return `the kernel module lacks ${missing.join(", ")}: ${REBUILD}`;
    return { exports: instance.exports as unknown as KernelExports, memory, module };
  } catch (e) {
    // In a browser the usual cause is a Content-Security-Policy without 'wasm-unsafe-eval'.
    return `the kernel module failed to load: ${(e as Error).message} (a page's Content-Security-Policy must allow ` +
      "'wasm-unsafe-eval' for WebAssembly); handprop runs on its TypeScript kernels";
  }
}

/** The generated module, kept: the shared-memory build is compiled from it when threads are first asked for. */
let generated: unknown = null;
const loaded = await loadKernels(async () => (generated = await importGenerated()));

/** The kernel exports, or null when the module could not be loaded (see wasmUnavailableReason). */
export const wasmKernels: KernelExports | null = typeof loaded === "string" ? null : loaded.exports;
/** Why wasmKernels is null, or null when it loaded. */
export const wasmUnavailableReason: string | null = typeof loaded === "string" ? loaded : null;
/** The compiled module and its memory, for instantiating it elsewhere (a worker). Null when unavailable. */
export const wasmModule: WebAssembly.Module | null = typeof loaded === "string" ? null : loaded.module;
export const wasmMemory: WebAssembly.Memory | null = typeof loaded === "string" ? null : loaded.memory;

// ------------------------------------------------------------------------------------------------
// Threads: which instance the calls run on, and the pool.

type PartFunction = (t: number, T: number, ...args: number[]) => void;
interface ActiveKernels {
  exports: KernelExports;
  memory: WebAssembly.Memory;
  parts: PartFunction[]; // PART_EXPORTS, looked up once
}

function activate(k: LoadedKernels | string): ActiveKernels | null {
  if (typeof k === "string") return null;
  return { exports: k.exports, memory: k.memory, parts: PART_EXPORTS.map((n) => (k.exports as unknown as Record<string, PartFunction>)[n]) };
}

/**
 * The instances: the ordinary one, and with threads the shared-memory one. Each call picks one (begin):
 * a call split across threads runs on the shared one, any other on the ordinary one, because V8 copies
 * into a shared memory at about half the speed of an ordinary one (TypedArray.set, relaxed atomics), and
 * the copies in and out are most of what a small or streaming call costs.
 */
const ordinary = activate(loaded);
let threaded: ActiveKernels | null = null;
/** The current call's instance. */
let cur: ActiveKernels | null = ordinary;
/** The shared-memory build, instantiated on first use and kept (its memory cannot shrink anyway). */
let sharedKernels: LoadedKernels | null = null;
let pool: KernelPool | null = null;
let threadsReason: string | null = null;

/**
 * The smallest call, in multiply-adds (or input elements for max pooling), worth a second thread: below
 * it, handing out parts costs more than it saves. ReLU and max pooling's backward are never split
 * (minPooledStreaming): they stream a few bytes per flop and their copies in and out of linear memory
 * (on the calling thread) dominate; split, they only add cross-core cache traffic and measured slower
 * (bench/kernels.ts threads, LeNet-5 on 2 cores).
 */
const MIN_POOLED_WORK = 1 << 18;
const MIN_POOLED_ELEMENTS = 1 << 17;
let minPooledWork = MIN_POOLED_WORK;
let minPooledElements = MIN_POOLED_ELEMENTS;
let minPooledStreaming = Infinity;
/** Parts per thread for calls cut into even blocks (rows, planes…): a few, so a late thread finds some left. */
const PARTS_PER_THREAD = 2;

/** Compile and instantiate the shared-memory build synchronously (allowed off a browser's main thread, where alone threads run). */
function loadShared(): LoadedKernels | string {
  if (sharedKernels !== null) return sharedKernels;
  const b64 = typeof generated === "object" && generated !== null ? (generated as Record<string, unknown>).wasmSharedBase64 : undefined;
  if (typeof b64 !== "string") return `${GENERATED} has no wasmSharedBase64 string: ${REBUILD}`;
  try {
    const module = new WebAssembly.Module(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const missing = REQUIRED_EXPORTS.filter((k) => typeof instance.exports[k] !== "function");
    if (missing.length > 0) return `the shared kernel module lacks ${missing.join(", ")}: ${REBUILD}`;
    return (sharedKernels = { exports: instance.exports as unknown as KernelExports, memory, module });
  } catch (e) {
    return `the shared-memory kernel module failed to load: ${(e as Error).message}`;
  }
}

/**
 * Run the wasm kernels on n threads (n ≥ 1; validated by the caller). Returns a promise of the number of
 * threads running once the workers have started: n, or 1 where threads are unavailable (the reason is
 * then wasmThreadsUnavailable()). Until the workers are up, calls run on the threads already started
 * — with the same results, as for any thread count. n = 1 stops the workers; the promise resolves once
 * they have exited.
 */
export function setWasmThreads(n: number): Promise<number> {
  const old = pool;
  pool = null;
  threaded = null;
  const stopped = old !== null ? old.close() : Promise.resolve();
  if (n <= 1) {
    threadsReason = null;
    return stopped.then(() => 1);
  }
  threadsReason = wasmKernels === null ? `the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}` : threadSupport();
  const shared = threadsReason === null ? loadShared() : threadsReason;
  if (typeof shared === "string") {
    threadsReason = shared;
    return stopped.then(() => 1);
  }
  let p: KernelPool;
  try {
    p = new KernelPool({ module: shared.module, memory: shared.memory, exports: shared.exports as unknown as Record<string, unknown>, names: PART_EXPORTS }, n);
  } catch (e) {
    threadsReason = `the kernel workers could not be started: ${(e as Error).message}`;
    return stopped.then(() => 1);
  }
  pool = p;
  threaded = activate(shared);
  return Promise.all([stopped, p.started]).then(([, started]) => {
    if (pool === p && p.failure !== null) threadsReason = p.failure;
    return started;
  });
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
function threadsFor(work: number, minWork = minPooledWork): number {
  return pool !== null && threaded !== null && work >= minWork && pool.running() > 1 ? pool.threads : 1;
}

/** Parts for a call over `units` independent blocks on T threads: 1 on one thread, else `perThread` per thread. */
function evenParts(units: number, T: number, perThread = PARTS_PER_THREAD): number {
  return T === 1 ? 1 : Math.max(1, Math.min(units, T * perThread, MAX_PARTS));
}

/**
 * Run part function `fn` as `parts` parts with these arguments after (t, T, ws): in turn on this thread
 * (scratch wsBase) when T = 1, else through the pool (thread i's scratch: wsBase + i · wsStride). Fixed
 * arity (the pool's MAX_ARGS), no rest array: nothing is allocated per call.
 */
function runParts(
  fn: PartIndex, T: number, parts: number, wsBase: number, wsStride: number,
  a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0, a8 = 0, a9 = 0, a10 = 0, a11 = 0,
  a12 = 0, a13 = 0, a14 = 0, a15 = 0, a16 = 0, a17 = 0, a18 = 0, a19 = 0, a20 = 0, a21 = 0, a22 = 0, a23 = 0,
): void {
  if (T === 1 || pool === null) {
    const f = cur!.parts[fn];
    for (let t = 0; t < parts; t++) {
      f(t, parts, wsBase, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11, a12, a13, a14, a15, a16, a17, a18, a19, a20, a21, a22, a23);
    }
    return;
  }
  const a = pool.args;
  a[0] = a0; a[1] = a1; a[2] = a2; a[3] = a3; a[4] = a4; a[5] = a5; a[6] = a6; a[7] = a7; a[8] = a8; a[9] = a9; a[10] = a10; a[11] = a11;
  a[12] = a12; a[13] = a13; a[14] = a14; a[15] = a15; a[16] = a16; a[17] = a17; a[18] = a18; a[19] = a19; a[20] = a20; a[21] = a21; a[22] = a22; a[23] = a23;
  pool.run(fn, parts, wsBase, wsStride);
}

// ------------------------------------------------------------------------------------------------
// The scratch arena.

let top = ARENA_BASE;

/** Start a kernel call: everything allocated by the previous call is released. */
function resetArena(): void {
  top = ARENA_BASE;
}

/**
 * Reserve `bytes` (64-byte aligned) and return its offset, growing the memory if needed. 64 bytes of
 * slack follow each block: kernels may read a partial vector past the end of an input (conv.as).
 */
function alloc(bytes: number): number {
  const mem = cur!.memory;
  const ptr = (top + 63) & ~63;
  top = ptr + bytes + 64;
  const size = mem.buffer.byteLength;
  if (top > size) {
    // grow by at least a quarter so a slowly rising high-water mark does not grow on every call
    const want = Math.max(top, size + (size >> 2));
    try {
      mem.grow(Math.ceil((want - size) / PAGE));
    } catch {
      try {
        mem.grow(Math.ceil((top - size) / PAGE));
      } catch (e) {
        throw new RangeError(`handprop: the wasm kernels need ${Math.ceil(top / 2 ** 20)} MiB of WebAssembly memory for this call, more than ` +
          `the engine allows (${(e as Error).message}): use smaller batches, or setBackend("js")`, { cause: e });
      }
    }
  }
  return ptr;
}

/** Bytes of linear memory the arenas currently span (their high-water marks are the memories' sizes). */
export function wasmMemoryBytes(): number {
  return (ordinary?.memory.buffer.byteLength ?? 0) + (sharedKernels?.memory.buffer.byteLength ?? 0);
}

/** Views of one memory for one call site (see ViewCache). */
class ViewSet {
  buffer: ArrayBufferLike | null = null;
  readonly f32: (Float32Array | undefined)[] = [];
  readonly i32: (Int32Array | undefined)[] = [];
}

/**
 * Typed-array views of linear memory for one call site, one per slot (and per instance), reused while
 * their offset, length and the memory's buffer stay the same: after memory.grow, `memory.buffer` is a
 * new object (and an ordinary memory's old views are detached, length 0), so they are recreated.
 */
export class ViewCache {
  private readonly sets = [new ViewSet(), new ViewSet()]; // the ordinary instance's, the shared one's

  private check(): ViewSet {
    const set = this.sets[cur === ordinary ? 0 : 1];
    const buf = cur!.memory.buffer;
    if (buf !== set.buffer) {
      set.buffer = buf;
      set.f32.fill(undefined);
      set.i32.fill(undefined);
    }
    return set;
  }

  float32(slot: number, ptr: number, n: number): Float32Array {
    const set = this.check();
    let v = set.f32[slot];
    if (v === undefined || v.byteOffset !== ptr || v.length !== n) set.f32[slot] = v = new Float32Array(set.buffer!, ptr, n);
    return v;
  }

  int32(slot: number, ptr: number, n: number): Int32Array {
    const set = this.check();
    let v = set.i32[slot];
    if (v === undefined || v.byteOffset !== ptr || v.length !== n) set.i32[slot] = v = new Int32Array(set.buffer!, ptr, n);
    return v;
  }
}

/** Start a call on T threads: pick its instance (the shared one when T > 1) and reset the arena. */
function begin(T: number): KernelExports {
  cur = T > 1 && threaded !== null ? threaded : ordinary;
  if (cur === null) throw new Error(`handprop: the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  resetArena();
  return cur.exports;
}

// ------------------------------------------------------------------------------------------------
// GEMM with the gemm.ts signature (offsets and leading dimensions into JS arrays).

const gemmViews = new ViewCache();

/** Copy rows×cols of src (leading dimension ld, from off) into the arena as a dense rows×cols matrix. */
function putMatrix(slot: number, src: Float32Array, off: number, ld: number, rows: number, cols: number): number {
  const ptr = alloc(rows * cols * 4);
  const dst = gemmViews.float32(slot, ptr, rows * cols);
  if (ld === cols) dst.set(rows * cols === src.length && off === 0 ? src : src.subarray(off, off + rows * cols));
  else for (let r = 0; r < rows; r++) dst.set(src.subarray(off + r * ld, off + r * ld + cols), r * cols);
  return ptr;
}

/**
 * gemm.ts's C = α·op(A)·op(B) + β·C on float32 arrays, run by the wasm kernels. The operands are copied
 * into linear memory (compacted: a leading dimension larger than the row is dropped) and C back out.
 */
export function gemmWasm(
  transA: boolean, transB: boolean,
  M: number, N: number, K: number,
  alpha: number,
  A: Float32Array, aOff: number, lda: number,
  B: Float32Array, bOff: number, ldb: number,
  beta: number,
  C: Float32Array, cOff: number, ldc: number,
): void {
  if (M <= 0 || N <= 0) return;
  const T = threadsFor(M * N * K);
  const k = begin(T);
  const aRows = transA ? K : M, aCols = transA ? M : K;
  const bRows = transB ? N : K, bCols = transB ? K : N;
  const a = putMatrix(0, A, aOff, lda, aRows, aCols);
  const b = putMatrix(1, B, bOff, ldb, bRows, bCols);
  const c = beta === 0 ? alloc(M * N * 4) : putMatrix(2, C, cOff, ldc, M, N);
  // parts: blocks of C's rows, or when it is wider than tall of its columns (each part then packs all
  // of A, so only one per thread): see gemmPart
  const parts = M >= N ? evenParts(M, T) : Math.min(T, Math.ceil(N / 8));
  const stride = k.gemmPartScratchBytes(+transA, +transB, M, N, K, parts);
  const ws = alloc(T * stride);
  runParts(Part.Gemm, T, parts, ws, stride, +transA, +transB, M, N, K, alpha, a, aCols, b, bCols, beta, c, N);
  const out = gemmViews.float32(2, c, M * N);
  if (ldc === N) C.set(out, cOff);
  else for (let r = 0; r < M; r++) C.set(out.subarray(r * N, (r + 1) * N), cOff + r * ldc);
}

// ------------------------------------------------------------------------------------------------
// Layer-level operations. Each instance belongs to one layer and caches that layer's views. Arrays may
// be float32 or float64 (TypedArray.set converts on the way in and out); the arithmetic is float32.

/** Conv2D forward/backward for one layer (float32, NCHW, weights (O, C, kh, kw)). */
export class WasmConv2D {
  private readonly views = new ViewCache();

  /** y = conv(x, w) + b (b null: no bias). x (N, C, H, W) and y (N, O, OH, OW) as in g. */
  forward(g: ConvGeometry, O: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const K = C * kh * kw;
    const T = threadsFor(N * O * K * OH * OW);
    const k = begin(T);
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const bp = b === null ? 0 : alloc(b.length * 4);
    const yp = alloc(y.length * 4);
    const apack = alloc(k.convPackedBytes(C, O, kh, kw));
    const parts = T === 1 ? 1 : Math.min(N, MAX_PARTS); // an image per part
    const stride = k.convThreadScratchBytes(C, O, kh, kw, OH, OW);
    const ws = alloc(T * stride);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    if (b !== null) v.float32(2, bp, b.length).set(b);
    k.packA(0, O, K, 1, wp, K, apack);
    runParts(Part.ConvForward, T, parts, ws, stride, N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, apack, bp, yp);
    y.set(v.float32(3, yp, y.length));
  }

  /** dW += ∂L/∂W, db += ∂L/∂b (db null: no bias), dx = ∂L/∂x (dx null: not wanted); x is the forward's input. */
  backward(
    g: ConvGeometry, O: number, x: TypedArray, w: TypedArray, dy: TypedArray,
    dW: TypedArray, db: TypedArray | null, dx: TypedArray | null,
  ): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const K = C * kh * kw;
    const T = threadsFor(N * O * K * OH * OW * (dx === null ? 1 : 2));
    const k = begin(T);
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const dyp = alloc(dy.length * 4);
    const dWp = alloc(dW.length * 4);
    const dbp = db === null ? 0 : alloc(db.length * 4);
    const dxp = dx === null ? 0 : alloc(dx.length * 4);
    const apack = dx === null ? 0 : alloc(k.convPackedBytes(C, O, kh, kw));
    // parts: blocks of dW's columns (each over every image), then an image of dx per part (see
    // convBackwardPart). With dx, one dW block per thread: the many dx parts even out the load. Without
    // (a first layer), the dW blocks alone must: up to 4 per thread, of 4 columns each where K allows
    // (LeNet's first layer, K = 25: 6 blocks of 4 and one of 1).
    const dWParts = T === 1 ? 1 : Math.min(Math.ceil(K / 4), dx === null ? 4 * T : T, MAX_PARTS - 1);
    const dxParts = dx === null ? 0 : T === 1 ? 1 : Math.min(N, MAX_PARTS - dWParts);
    const stride = k.convThreadScratchBytes(C, O, kh, kw, OH, OW);
    const ws = alloc(T * stride);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    v.float32(2, dyp, dy.length).set(dy);
    v.float32(3, dWp, dW.length).set(dW);
    if (db !== null) v.float32(4, dbp, db.length).set(db);
    if (dx !== null) k.packA(1, K, O, 1, wp, K, apack); // Wᵀ (K × O)
    runParts(Part.ConvBackward, T, dWParts + dxParts, ws, stride, dWParts, N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, apack, dyp, dWp, dbp, dxp);
    dW.set(v.float32(3, dWp, dW.length));
    if (db !== null) db.set(v.float32(4, dbp, db.length));
    if (dx !== null) dx.set(v.float32(5, dxp, dx.length));
  }
}

/** Dense forward/backward for one layer (float32; x (N, F), W (F, O), y (N, O)). */
export class WasmDense {
  private readonly views = new ViewCache();

  forward(N: number, F: number, O: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const T = threadsFor(N * F * O);
    const k = begin(T);
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const bp = b === null ? 0 : alloc(b.length * 4);
    const yp = alloc(y.length * 4);
    const parts = evenParts(N, T); // rows of y
    const stride = k.denseThreadScratchBytes(N, F, parts);
    const ws = alloc(T * stride);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    if (b !== null) v.float32(2, bp, b.length).set(b);
    runParts(Part.DenseForward, T, parts, ws, stride, N, F, O, xp, wp, bp, yp);
    y.set(v.float32(3, yp, y.length));
  }

  backward(
    N: number, F: number, O: number, x: TypedArray, w: TypedArray, dy: TypedArray,
    dW: TypedArray, db: TypedArray | null, dx: TypedArray | null,
  ): void {
    const T = threadsFor(N * F * O * (dx === null ? 1 : 2));
    const k = begin(T);
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const dyp = alloc(dy.length * 4);
    const dWp = alloc(dW.length * 4);
    const dbp = db === null ? 0 : alloc(db.length * 4);
    const dxp = dx === null ? 0 : alloc(dx.length * 4);
    const parts = evenParts(Math.max(F, N), T); // rows of dW, and of dx
    const stride = k.denseThreadScratchBytes(N, F, parts);
    const ws = alloc(T * stride);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    v.float32(2, dyp, dy.length).set(dy);
    v.float32(3, dWp, dW.length).set(dW);
    if (db !== null) v.float32(4, dbp, db.length).set(db);
    runParts(Part.DenseBackward, T, parts, ws, stride, N, F, O, xp, wp, dyp, dWp, dbp, dxp);
    dW.set(v.float32(3, dWp, dW.length));
    if (db !== null) db.set(v.float32(4, dbp, db.length));
    if (dx !== null) dx.set(v.float32(5, dxp, dx.length));
  }
}

/** MaxPool2D forward for one layer: y and the winners' flat indices into x (see wasm/pool.as). */
export class WasmMaxPool2D {
  private readonly views = new ViewCache();
  // the last forward's planes, for splitting the backward by plane (a window never leaves its plane)
  private planes = 1;
  private inPlane = 0;
  private outPlane = 0;

  forward(
    NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, OH: number, OW: number,
    x: TypedArray, y: TypedArray, arg: Int32Array,
  ): void {
    const T = threadsFor(x.length, minPooledElements);
    begin(T);
    const xp = alloc(x.length * 4);
    const yp = alloc(y.length * 4);
    const ap = alloc(arg.length * 4);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    runParts(Part.MaxPoolForward, T, evenParts(NC, T), 0, 0, NC, H, W, kh, kw, sh, sw, ph, pw, OH, OW, xp, yp, ap);
    this.planes = NC;
    this.inPlane = H * W;
    this.outPlane = OH * OW;
    y.set(v.float32(1, yp, y.length));
    arg.set(v.int32(0, ap, arg.length));
  }

  /** dx = 0, then dx[arg[o]] += dy[o] in order of o. */
  backward(dy: TypedArray, arg: Int32Array, dx: TypedArray): void {
    const T = threadsFor(dx.length, minPooledStreaming);
    begin(T);
    const dyp = alloc(dy.length * 4);
    const ap = alloc(arg.length * 4);
    const dxp = alloc(dx.length * 4);
    const v = this.views;
    v.float32(2, dyp, dy.length).set(dy);
    v.int32(1, ap, arg.length).set(arg);
    // by plane when these are the last forward's planes, else as one plane (one thread)
    const byPlane = this.planes * this.outPlane === dy.length && this.planes * this.inPlane === dx.length;
    const NC = byPlane ? this.planes : 1;
    runParts(Part.MaxPoolBackward, T, evenParts(NC, T), 0, 0, NC, byPlane ? this.inPlane : dx.length, byPlane ? this.outPlane : dy.length, dyp, ap, dxp);
    dx.set(v.float32(3, dxp, dx.length));
  }
}

/**
 * ReLU for one layer, bit for bit the same as src/nn/activations.ts's loops (see wasm/elementwise.as),
 * without their branch mispredictions on activations of random sign.
 */
export class WasmReLU {
  private readonly views = new ViewCache();

  /** y = x > 0 ? x : 0 */
  forward(x: TypedArray, y: TypedArray): void {
    const n = x.length;
    const T = threadsFor(n, minPooledStreaming);
    begin(T);
    const xp = alloc(n * 4);
    const yp = alloc(n * 4);
    this.views.float32(0, xp, n).set(x);
    runParts(Part.ReluForward, T, evenParts(n >> 2, T), 0, 0, n, xp, yp);
    y.set(this.views.float32(1, yp, n));
  }

  /** dx = y > 0 ? dy : 0 */
  backward(y: TypedArray, dy: TypedArray, dx: TypedArray): void {
    const n = y.length;
    const T = threadsFor(n, minPooledStreaming);
    begin(T);
    const yp = alloc(n * 4);
    const dyp = alloc(n * 4);
    const v = this.views;
    v.float32(0, yp, n).set(y);
    v.float32(1, dyp, n).set(dy);
    runParts(Part.ReluBackward, T, evenParts(n >> 2, T), 0, 0, n, yp, dyp, dyp);
    dx.set(v.float32(1, dyp, n));
  }
}
