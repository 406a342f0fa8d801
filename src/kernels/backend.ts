// Which implementation the float32 hot loops run on:
//
//   "wasm"  WebAssembly SIMD kernels (wasm-backend.ts over src/kernels/wasm/*.as) — the default where they load
//   "js"    the pure-TypeScript loops (js.ts, the readable reference) — everywhere else
//
// Layers call `kernels` (below), the Kernels interface of kernels.ts: each forward goes to the current
// backend when it takes the arrays (wasm: float32 only, else js), each backward to the backend that ran
// the forward (its saved context says which). Nothing else in the library chooses a backend.
//
// float64 always takes the TypeScript path (the kernels are float32 only), so gradient checks and the
// article's network are unaffected by this switch. Each backend is deterministic on its own; their
// float32 results differ in the last bits because they sum in different orders.
//
// The initial choice can be forced with the environment variable HANDPROP_BACKEND=js|wasm (Node), and
// changed at run time with setBackend(). Forcing "wasm" where the kernels are unavailable is an error
// that says why.
//
// Threads: setThreads(n) runs the wasm kernels on n threads (the calling thread and n − 1 workers sharing
// its WebAssembly memory, see wasm-threads.ts and threads.ts) with results bit-identical to one thread. The
// default is 1 until asked (the CLI asks for every core); HANDPROP_THREADS=n (Node) sets the initial
// count. Where threads cannot run (no SharedArrayBuffer, a browser's main thread, no wasm kernels) the
// kernels stay on one thread and threadsUnavailable() says why. The "js" backend is single-threaded.

import { replaceData, type NDArray, type TypedArray } from "../nd/ndarray.ts";
import { reuse } from "./buffers.ts";
import { jsBackend } from "./js.ts";
import type { BackendName, Kernels } from "./kernels.ts";
import { wasmBackend } from "./wasm-backend.ts";
import { wasmKernels, wasmUnavailableReason } from "./wasm-loader.ts";
import {
  isResident,
  residentCopy,
  residentOutputs,
  setInternalOutputs as setWasmInternalOutputs,
} from "./wasm-memory.ts";
import {
  firstNonFiniteResidentWasm,
  residentFloat32,
  setWinograd,
  winogradEnabled,
  zeroResidentWasm,
} from "./wasm-ops.ts";
import { setWasmThreads, wasmThreads, wasmThreadsRequested, wasmThreadsUnavailable } from "./wasm-threads.ts";

export type { BackendName };

function env(name: string): string | undefined {
  return typeof process === "object" ? process.env[name] : undefined;
}

function checked(name: unknown, where: string): BackendName {
  if (name !== "js" && name !== "wasm")
    throw new RangeError(`${where}: backend must be "js" or "wasm", got ${JSON.stringify(name)}`);
  if (name === "wasm" && wasmKernels === null)
    throw new Error(`${where}: the "wasm" backend is unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  return name;
}

let current: BackendName = (() => {
  const value = env("HANDPROP_BACKEND");
  if (value !== undefined && value !== "") return checked(value, "HANDPROP_BACKEND");
  return wasmKernels !== null ? "wasm" : "js";
})();

/** The backend float32 kernels currently run on. */
export function getBackend(): BackendName {
  return current;
}

/** Switch backends. Throws if "wasm" is asked for where the kernels could not be loaded. */
export function setBackend(name: BackendName): void {
  current = checked(name, "setBackend");
}

/**
 * How the wasm backend computes convolutions: "auto" (the default) runs 3×3 stride-1 convolutions with at least
 * 8 input channels by Winograd's F(2×2, 3×3) — 2.25× fewer multiplications, results within float32 rounding of
 * the direct sum, the same bits on every thread count (derivation.md §6) — and every other one as a GEMM;
 * "direct" runs them all as GEMMs, as handprop did before Winograd (to reproduce such a run's bits).
 */
export type ConvAlgorithm = "auto" | "direct";

function checkedAlgorithm(name: unknown, where: string): ConvAlgorithm {
  if (name !== "auto" && name !== "direct")
    throw new RangeError(`${where}: the convolution algorithm must be "auto" or "direct", got ${JSON.stringify(name)}`);
  return name;
}

{
  const value = env("HANDPROP_CONV_ALGORITHM");
  if (value !== undefined && value !== "") setWinograd(checkedAlgorithm(value, "HANDPROP_CONV_ALGORITHM") === "auto");
}

/** Choose how the wasm backend computes convolutions (see ConvAlgorithm); throws a RangeError on anything else. */
export function setConvAlgorithm(name: ConvAlgorithm): void {
  setWinograd(checkedAlgorithm(name, "setConvAlgorithm") === "auto");
}

/** How the wasm backend computes convolutions now. */
export function getConvAlgorithm(): ConvAlgorithm {
  return winogradEnabled() ? "auto" : "direct";
}

/** True if the WebAssembly kernels loaded (whatever the current backend). */
export function wasmAvailable(): boolean {
  return wasmKernels !== null;
}

/** Why the WebAssembly kernels are unavailable, or null if they loaded. */
export function wasmUnavailable(): string | null {
  return wasmUnavailableReason;
}

/** The backend that runs an op on these arrays: the current one, unless it is "wasm" and one is not float32. */
function backendFor(a: TypedArray, b?: TypedArray, c?: TypedArray): Kernels {
  if (current !== "wasm" || !(a instanceof Float32Array)) return jsBackend;
  return (b === undefined || b instanceof Float32Array) && (c === undefined || c instanceof Float32Array)
    ? wasmBackend
    : jsBackend;
}

/**
 * The kernels layers call. Forwards run on backendFor(their input and weights); backwards on the backend
 * whose forward saved the context (`ctx.kernels`), so a backward always matches its forward.
 */
export const kernels: Kernels = {
  get name(): BackendName {
    return current;
  },
  gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc) {
    backendFor(A, B, C).gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
  },
  conv2dForward: (g, groups, x, w, b, prev) => backendFor(x.data, w.data).conv2dForward(g, groups, x, w, b, prev),
  conv2dBackward: (ctx, w, dy, dW, db, needDx) => ctx.kernels.conv2dBackward(ctx, w, dy, dW, db, needDx),
  denseForward: (x, w, b, prev) => backendFor(x.data, w.data).denseForward(x, w, b, prev),
  denseBackward: (ctx, w, dy, dW, db, needDx) => ctx.kernels.denseBackward(ctx, w, dy, dW, db, needDx),
  maxPool2dForward: (g, x, prev) => backendFor(x.data).maxPool2dForward(g, x, prev),
  maxPool2dBackward: (ctx, dy, needDx) => ctx.kernels.maxPool2dBackward(ctx, dy, needDx),
  avgPool2dForward: (g, countIncludePad, x, prev) => backendFor(x.data).avgPool2dForward(g, countIncludePad, x, prev),
  avgPool2dBackward: (ctx, dy, needDx) => ctx.kernels.avgPool2dBackward(ctx, dy, needDx),
  reluForward: (x, prev) => backendFor(x.data).reluForward(x, prev),
  reluBackward: (ctx, dy, needDx) => ctx.kernels.reluBackward(ctx, dy, needDx),
  adamUpdate(w, grad, m, v, h) {
    (v instanceof Float32Array ? backendFor(w, grad, m) : jsBackend).adamUpdate(w, grad, m, v, h);
  },
  sgdUpdate(w, grad, buf, h) {
    (buf === null ? backendFor(w, grad) : backendFor(w, grad, buf)).sgdUpdate(w, grad, buf, h);
  },
  batchNormForward: (x, p, training, prev) =>
    backendFor(x.data, p.runningMean.data, p.gamma?.data).batchNormForward(x, p, training, prev),
  batchNormBackward: (ctx, gamma, dy, dGamma, dBeta, needDx) =>
    ctx.kernels.batchNormBackward(ctx, gamma, dy, dGamma, dBeta, needDx),
  add: (a, b, out) => {
    backendFor(a, b, out).add(a, b, out);
  },
  outputBuffer: (buf, shape, dtype) =>
    (current === "wasm" && dtype === "float32" ? wasmBackend : jsBackend).outputBuffer(buf, shape, dtype),
  firstNonFinite: (a) => backendFor(a).firstNonFinite(a),
  groupNormForward: (x, N, groups, C, gamma, beta, eps, prev) =>
    backendFor(x.data, gamma?.data, beta?.data).groupNormForward(x, N, groups, C, gamma, beta, eps, prev),
  groupNormBackward: (ctx, gamma, dy, dGamma, dBeta, needDx) =>
    ctx.kernels.groupNormBackward(ctx, gamma, dy, dGamma, dBeta, needDx),
};

/**
 * Say whether the arrays the kernels return from now on are internal to a model's pass: read only by the
 * model's next layers, and not after the producing layer's next forward or backward. Sequential and Model
 * turn it on for their passes, so the wasm backend keeps those arrays resident in its linear memory (its
 * kernels read and write them there, with no copies; wasm-memory.ts). Returns the previous setting.
 */
export function setInternalOutputs(on: boolean): boolean {
  return setWasmInternalOutputs(on);
}

/**
 * True if a is internal to a model's pass (see setInternalOutputs): made by a kernel for the model's next
 * layer, which may read it in place (the wasm backend keeps such arrays resident in its linear memory).
 * Only inside a pass: outside one a resident a is the caller's (a trained parameter or gradient, see
 * keepResident), which a layer called on its own must not alias.
 */
export function isInternal(a: NDArray): boolean {
  return isResident(a.data) && residentOutputs();
}

/**
 * a, as an array its caller may keep: a itself, or, when a is internal to a pass (resident in a backend's
 * memory), a copy in `buffer` (reused when it has a's shape, else a new array).
 */
export function ownedArray(a: NDArray, buffer: NDArray | null): NDArray {
  if (!isResident(a.data)) return a;
  const copy = reuse(buffer, a.shape, a.dtype);
  copy.data.set(a.data);
  return copy;
}

/**
 * Most threads setThreads accepts: more than the largest machines' cores (so setThreads(cores) always works),
 * where the calls' parts (MAX_PARTS, two per thread) already run out. Each thread is a worker with its own
 * JavaScript heap and kernel instance and its own scratch in the kernels' memory: far more threads than cores
 * only cost memory and time, and 100 000 of them end the process (out of memory).
 */
export const MAX_THREADS = 1024;

function checkedThreads(n: unknown, where: string): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `${where}: the number of threads must be an integer ≥ 1, got ${typeof n === "string" ? JSON.stringify(n) : String(n)}`,
    );
  }
  if (n > MAX_THREADS) throw new RangeError(`${where}: at most ${MAX_THREADS} threads, got ${n}`);
  return n;
}

/**
 * Run the float32 wasm kernels on n threads (an integer from 1 to MAX_THREADS = 1024; anything else throws a
 * RangeError). Results are bit-identical to one thread's. Returns a promise of the number of threads running
 * once the workers have started — n, or 1 where threads are unavailable (threadsUnavailable() says why);
 * calls made before then already run, on the threads started so far. A setThreads that replaces the workers
 * (setThreads(1), or another count) sets them aside, asleep, for 30 s: a setThreads of their count within
 * that time takes them back at once and warm, and after it they exit. Workers never keep a Node process alive.
 */
export function setThreads(n: number): Promise<number> {
  return setWasmThreads(checkedThreads(n, "setThreads"));
}

/** Threads the wasm kernels run on now (1 until setThreads(n > 1) has started its workers). */
export function getThreads(): number {
  return wasmThreads();
}

/**
 * Why the kernels run on fewer threads than the last setThreads asked for (no SharedArrayBuffer: a browser
 * page without cross-origin isolation; a browser's main thread, which may not block; no wasm kernels;
 * a worker that failed to start), or null.
 */
export function threadsUnavailable(): string | null {
  const reason = wasmThreadsUnavailable();
  if (reason !== null) return reason;
  const asked = wasmThreadsRequested();
  return wasmThreads() < asked ? `${asked - wasmThreads()} of ${asked - 1} kernel workers are still starting` : null;
}

{
  const value = env("HANDPROP_THREADS");
  if (value !== undefined && value !== "") {
    const n = /^[0-9]+$/.test(value.trim()) ? Number(value) : NaN;
    if (!Number.isInteger(n) || n < 1) checkedThreads(value, "HANDPROP_THREADS");
    void setThreads(n);
  }
}

/**
 * Keep a's elements where the wasm kernels work: on the wasm backend, when resident arrays can be made
 * (wasm-memory.ts), a float32 a gets a view of the kernels' linear memory holding its values as its
 * storage (replaceData), which the kernels then read and update in place. The trainer does this for every
 * trainable parameter and its gradient, so a step copies none of them in or out. A no-op anywhere else,
 * or when a is there already.
 */
export function keepResident(a: NDArray): void {
  const data = residentCopyOf(a.data);
  if (data !== a.data) replaceData(a, data);
}

/**
 * a.fill(0) — for a resident a (a trainer's gradient) by a vector kernel where it lies: fill() on a view of a
 * SharedArrayBuffer stores element by element, several times slower.
 */
export function fillZero(a: TypedArray): void {
  if (!(a instanceof Float32Array && zeroResidentWasm(a))) a.fill(0);
}

/**
 * The position in `arrays` of the first one holding a NaN or ±Infinity, or −1: one kernel call over the
 * resident ones where they lie (the trainer's gradients and parameters), kernels.firstNonFinite on the others.
 */
export function firstNonFiniteAmong(arrays: readonly TypedArray[]): number {
  const resident = firstNonFiniteResidentWasm(arrays);
  const end = resident < 0 ? arrays.length : resident;
  for (let i = 0; i < end; i++) if (!residentFloat32(arrays[i]) && kernels.firstNonFinite(arrays[i]) >= 0) return i;
  return resident;
}

/** True if a lives in the kernels' memory (a resident parameter or gradient, or a pass's output). */
export function isResidentData(a: TypedArray): boolean {
  return isResident(a);
}

/**
 * For state kept beside resident parameters (an optimizer's slots): a copy of a in the kernels' memory, on
 * the wasm backend, for float32 a, when resident arrays can be made; else a itself (also when it is there).
 */
export function residentCopyOf(a: TypedArray): TypedArray {
  if (current !== "wasm" || !(a instanceof Float32Array)) return a;
  return residentCopy(a) ?? a; // a itself when it is resident already
}
