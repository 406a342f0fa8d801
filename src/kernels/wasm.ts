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
// Threads (later). The kernels take raw pointers, keep no global state and write only their outputs and
// the scratch they are given, and every output element's summation order is independent of how the
// work is split (gemm.as), so workers can share them: loadKernels(importer, { shared: true }) gives the
// shared-memory build, which a worker instantiates again over the same WebAssembly.Memory (the module
// is in `module`); the main thread copies operands into the arena as here, and each worker runs a slice
// with its own scratch — rows of a GEMM (gemmPacked/gemmNT on a row range give the same bits as the
// whole), or images of a convolution (convForward on images n0…n1 by offsetting x and y; for
// convBackward each worker would accumulate dW/db into its own buffer, summed in a fixed order after).

import type { TypedArray } from "../nd/ndarray.ts";
import type { ConvGeometry } from "./im2col.ts";

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
}

const REQUIRED_EXPORTS: readonly (keyof KernelExports)[] = [
  "gemm", "gemmScratchBytes", "convForward", "convBackward", "convScratchBytes",
  "denseForward", "denseBackward", "denseScratchBytes", "maxPoolForward", "maxPoolBackward", "reluForward", "reluBackward",
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

/** Maximum pages of the shared variant's memory (scripts/build-wasm.mjs declares the same): 2 GiB, reserved up front. */
export const SHARED_MAX_PAGES = 32768;

/**
 * Compile and instantiate the kernels, or say (as a string) why they cannot be used. `importer` yields
 * the generated module ({wasmBase64, wasmSharedBase64}); tests pass stand-ins to exercise the fallbacks.
 * shared: instantiate the shared-memory variant over a new shared WebAssembly.Memory — the form that
 * workers can instantiate again over the same memory (this file's own instance is the non-shared one).
 */
export async function loadKernels(importer: () => Promise<unknown> = importGenerated, opts: { shared?: boolean } = {}): Promise<LoadedKernels | string> {
  if (!simdSupported()) return "this JavaScript engine has no WebAssembly SIMD";
  let mod: unknown;
  try {
    mod = await importer();
  } catch {
    return "src/kernels/wasm/kernels.generated.ts is missing: run `node scripts/build-wasm.mjs` (npm install does)";
  }
  const key = opts.shared === true ? "wasmSharedBase64" : "wasmBase64";
  const b64 = typeof mod === "object" && mod !== null ? (mod as Record<string, unknown>)[key] : undefined;
  if (typeof b64 !== "string") return `src/kernels/wasm/kernels.generated.ts has no ${key} string: rebuild it with node scripts/build-wasm.mjs`;
  try {
    const module = await WebAssembly.compile(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    const memory = opts.shared === true ? new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true }) : new WebAssembly.Memory({ initial: 16 });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const missing = REQUIRED_EXPORTS.filter((k) => typeof instance.exports[k] !== "function");
    if (missing.length > 0) return `the kernel module lacks ${missing.join(", ")}: rebuild it with node scripts/build-wasm.mjs`;
    return { exports: instance.exports as unknown as KernelExports, memory, module };
  } catch (e) {
    return `the kernel module failed to load: ${(e as Error).message}`;
  }
}

const loaded = await loadKernels();

/** The kernel exports, or null when the module could not be loaded (see wasmUnavailableReason). */
export const wasmKernels: KernelExports | null = typeof loaded === "string" ? null : loaded.exports;
/** Why wasmKernels is null, or null when it loaded. */
export const wasmUnavailableReason: string | null = typeof loaded === "string" ? loaded : null;
/** The compiled module and its memory, for instantiating it elsewhere (a worker). Null when unavailable. */
export const wasmModule: WebAssembly.Module | null = typeof loaded === "string" ? null : loaded.module;
export const wasmMemory: WebAssembly.Memory | null = typeof loaded === "string" ? null : loaded.memory;

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
  const mem = wasmMemory!;
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

/** Bytes of linear memory the arena currently spans (its high-water mark is the memory size). */
export function wasmMemoryBytes(): number {
  return wasmMemory?.buffer.byteLength ?? 0;
}

/**
 * Typed-array views of linear memory for one call site, one per slot, reused while their offset,
 * length and the memory's buffer stay the same: after memory.grow, `memory.buffer` is a new object and
 * the old views are detached (length 0), so they are recreated.
 */
export class ViewCache {
  private buffer: ArrayBufferLike | null = null;
  private readonly f32: (Float32Array | undefined)[] = [];
  private readonly i32: (Int32Array | undefined)[] = [];

  private check(): ArrayBufferLike {
    const buf = wasmMemory!.buffer;
    if (buf !== this.buffer) {
      this.buffer = buf;
      this.f32.fill(undefined);
      this.i32.fill(undefined);
    }
    return buf;
  }

  float32(slot: number, ptr: number, n: number): Float32Array {
    const buf = this.check();
    let v = this.f32[slot];
    if (v === undefined || v.byteOffset !== ptr || v.length !== n) this.f32[slot] = v = new Float32Array(buf, ptr, n);
    return v;
  }

  int32(slot: number, ptr: number, n: number): Int32Array {
    const buf = this.check();
    let v = this.i32[slot];
    if (v === undefined || v.byteOffset !== ptr || v.length !== n) this.i32[slot] = v = new Int32Array(buf, ptr, n);
    return v;
  }
}

function kernels(): KernelExports {
  if (wasmKernels === null) throw new Error(`handprop: the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  return wasmKernels;
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
  const k = kernels();
  resetArena();
  const [aRows, aCols] = transA ? [K, M] : [M, K];
  const [bRows, bCols] = transB ? [N, K] : [K, N];
  const a = putMatrix(0, A, aOff, lda, aRows, aCols);
  const b = putMatrix(1, B, bOff, ldb, bRows, bCols);
  const c = beta === 0 ? alloc(M * N * 4) : putMatrix(2, C, cOff, ldc, M, N);
  const ws = alloc(k.gemmScratchBytes(+transA, +transB, M, K));
  k.gemm(+transA, +transB, M, N, K, alpha, a, aCols, b, bCols, beta, c, N, ws);
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
    const k = kernels();
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    resetArena();
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const bp = b === null ? 0 : alloc(b.length * 4);
    const yp = alloc(y.length * 4);
    const ws = alloc(k.convScratchBytes(C, O, kh, kw, OH, OW));
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    if (b !== null) v.float32(2, bp, b.length).set(b);
    k.convForward(N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, wp, bp, yp, ws);
    y.set(v.float32(3, yp, y.length));
  }

  /** dW += ∂L/∂W, db += ∂L/∂b (db null: no bias), dx = ∂L/∂x (dx null: not wanted); x is the forward's input. */
  backward(
    g: ConvGeometry, O: number, x: TypedArray, w: TypedArray, dy: TypedArray,
    dW: TypedArray, db: TypedArray | null, dx: TypedArray | null,
  ): void {
    const k = kernels();
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    resetArena();
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const dyp = alloc(dy.length * 4);
    const dWp = alloc(dW.length * 4);
    const dbp = db === null ? 0 : alloc(db.length * 4);
    const dxp = dx === null ? 0 : alloc(dx.length * 4);
    const ws = alloc(k.convScratchBytes(C, O, kh, kw, OH, OW));
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    v.float32(2, dyp, dy.length).set(dy);
    v.float32(3, dWp, dW.length).set(dW);
    if (db !== null) v.float32(4, dbp, db.length).set(db);
    k.convBackward(N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, wp, dyp, dWp, dbp, dxp, ws);
    dW.set(v.float32(3, dWp, dW.length));
    if (db !== null) db.set(v.float32(4, dbp, db.length));
    if (dx !== null) dx.set(v.float32(5, dxp, dx.length));
  }
}

/** Dense forward/backward for one layer (float32; x (N, F), W (F, O), y (N, O)). */
export class WasmDense {
  private readonly views = new ViewCache();

  forward(N: number, F: number, O: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const k = kernels();
    resetArena();
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const bp = b === null ? 0 : alloc(b.length * 4);
    const yp = alloc(y.length * 4);
    const ws = alloc(k.denseScratchBytes(N, F));
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    if (b !== null) v.float32(2, bp, b.length).set(b);
    k.denseForward(N, F, O, xp, wp, bp, yp, ws);
    y.set(v.float32(3, yp, y.length));
  }

  backward(
    N: number, F: number, O: number, x: TypedArray, w: TypedArray, dy: TypedArray,
    dW: TypedArray, db: TypedArray | null, dx: TypedArray | null,
  ): void {
    const k = kernels();
    resetArena();
    const xp = alloc(x.length * 4);
    const wp = alloc(w.length * 4);
    const dyp = alloc(dy.length * 4);
    const dWp = alloc(dW.length * 4);
    const dbp = db === null ? 0 : alloc(db.length * 4);
    const dxp = dx === null ? 0 : alloc(dx.length * 4);
    const ws = alloc(k.denseScratchBytes(N, F));
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    v.float32(1, wp, w.length).set(w);
    v.float32(2, dyp, dy.length).set(dy);
    v.float32(3, dWp, dW.length).set(dW);
    if (db !== null) v.float32(4, dbp, db.length).set(db);
    k.denseBackward(N, F, O, xp, wp, dyp, dWp, dbp, dxp, ws);
    dW.set(v.float32(3, dWp, dW.length));
    if (db !== null) db.set(v.float32(4, dbp, db.length));
    if (dx !== null) dx.set(v.float32(5, dxp, dx.length));
  }
}

/** MaxPool2D forward for one layer: y and the winners' flat indices into x (see wasm/pool.as). */
export class WasmMaxPool2D {
  private readonly views = new ViewCache();

  forward(
    NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number, OH: number, OW: number,
    x: TypedArray, y: TypedArray, arg: Int32Array,
  ): void {
    const k = kernels();
    resetArena();
    const xp = alloc(x.length * 4);
    const yp = alloc(y.length * 4);
    const ap = alloc(arg.length * 4);
    const v = this.views;
    v.float32(0, xp, x.length).set(x);
    k.maxPoolForward(NC, H, W, kh, kw, sh, sw, ph, pw, OH, OW, xp, yp, ap);
    y.set(v.float32(1, yp, y.length));
    arg.set(v.int32(0, ap, arg.length));
  }

  /** dx = 0, then dx[arg[o]] += dy[o] in order of o. */
  backward(dy: TypedArray, arg: Int32Array, dx: TypedArray): void {
    const k = kernels();
    resetArena();
    const dyp = alloc(dy.length * 4);
    const ap = alloc(arg.length * 4);
    const dxp = alloc(dx.length * 4);
    const v = this.views;
    v.float32(2, dyp, dy.length).set(dy);
    v.int32(1, ap, arg.length).set(arg);
    k.maxPoolBackward(dy.length, dyp, ap, dxp, dx.length);
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
    const k = kernels();
    resetArena();
    const n = x.length;
    const xp = alloc(n * 4);
    const yp = alloc(n * 4);
    this.views.float32(0, xp, n).set(x);
    k.reluForward(n, xp, yp);
    y.set(this.views.float32(1, yp, n));
  }

  /** dx = y > 0 ? dy : 0 */
  backward(y: TypedArray, dy: TypedArray, dx: TypedArray): void {
    const k = kernels();
    resetArena();
    const n = y.length;
    const yp = alloc(n * 4);
    const dyp = alloc(n * 4);
    const v = this.views;
    v.float32(0, yp, n).set(y);
    v.float32(1, dyp, n).set(dy);
    k.reluBackward(n, yp, dyp, dyp);
    dx.set(v.float32(1, dyp, n));
  }
}
