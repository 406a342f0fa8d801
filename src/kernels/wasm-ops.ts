// The WebAssembly kernels' per-op adapters: each copies its operands from JS arrays into the arena
// (wasm-memory.ts), runs one kernel call on as many threads as it is worth (wasm-threads.ts), and copies
// the results out; operands and outputs that are resident arrays are read and written where they lie
// (ViewCache.input, output, take). The Kernels interface over them is wasm-backend.ts.

import type { TypedArray } from "../nd/ndarray.ts";
import type { ConvGeometry } from "./im2col.ts";
import type { Gemm } from "./kernels.ts";
import { Part, type KernelExports } from "./wasm-loader.ts";
import { ViewCache, alloc, begin, isResident, residentAddress, residentOutput } from "./wasm-memory.ts";
import { MAX_PARTS, evenParts, runParts, threadsFor, threadsForElements, threadsForStreaming } from "./wasm-threads.ts";

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
export const gemmWasm: Gemm<Float32Array> = (
  transA,
  transB,
  M,
  N,
  K,
  alpha,
  A,
  aOff,
  lda,
  B,
  bOff,
  ldb,
  beta,
  C,
  cOff,
  ldc,
) => {
  if (M <= 0 || N <= 0) return;
  const T = threadsFor(M * N * K);
  const k = begin(T);
  const aRows = transA ? K : M,
    aCols = transA ? M : K;
  const bRows = transB ? N : K,
    bCols = transB ? K : N;
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
};

// ------------------------------------------------------------------------------------------------
// Layer-level operations. Each instance belongs to one saved context (wasm-backend.ts: one per layer)
// and caches its views. Arrays may be float32 or float64 (TypedArray.set converts on the way in and
// out); the arithmetic is float32.

/**
 * Whether 3×3 stride-1 convolutions run by Winograd's F(2×2, 3×3) (wasm/winograd.as, derivation §6) where
 * that is faster ("auto"), or always as direct GEMM convolutions ("direct": the bits of handprop before
 * Winograd, for reproducing a run exactly). backend.ts's setConvAlgorithm sets it.
 */
let winogradOn = true;

export function setWinograd(on: boolean): void {
  winogradOn = on;
}

export function winogradEnabled(): boolean {
  return winogradOn;
}

/** The 16 transformed weight matrices are packed pre-broadcast (16·O·C·4 floats): above this, direct. */
const WINOGRAD_MAX_PACKED_BYTES = 64 << 20;
/**
 * Most scratch bytes one thread of a Winograd call may take (winogradThreadScratchBytes: the padded image, V
 * and M of a group of images): above this, direct. Below it every offset winograd.as computes fits an i32.
 */
const WINOGRAD_MAX_THREAD_SCRATCH_BYTES = 1 << 30;

/**
 * A stride-1 3×3 convolution as winogradConv runs it: C input channels of H × W, padded by (padTop, padLeft)
 * (and zeros past the bottom and right edges), O output channels of OH × OW. Each op owns two and refills them
 * on every call (no allocation in a step).
 */
export class WinogradShape {
  C = 0;
  H = 0;
  W = 0;
  O = 0;
  padTop = 0;
  padLeft = 0;
  OH = 0;
  OW = 0;
  /** winogradThreadScratchBytes for scratchImages images (−1: not asked yet for this shape). */
  scratch = 0;
  scratchImages = -1;

  /** g's forward (O output channels), or its input gradient's: dy with the transposed, rotated kernel (§6 W4). */
  of(g: ConvGeometry, O: number, inputGradient: boolean): this {
    this.scratchImages = -1;
    const { C, H, W, padTop, padLeft, OH, OW } = g;
    this.C = inputGradient ? O : C;
    this.H = inputGradient ? OH : H;
    this.W = inputGradient ? OW : W;
    this.O = inputGradient ? C : O;
    this.padTop = inputGradient ? 2 - padTop : padTop;
    this.padLeft = inputGradient ? 2 - padLeft : padLeft;
    this.OH = inputGradient ? H : OH;
    this.OW = inputGradient ? W : OW;
    return this;
  }
}

/**
 * True where the convolution s of geometry g's kernel runs by Winograd: a 3×3 kernel, stride and dilation 1,
 * padding of 0 to 2 before each axis (so its input gradient's, 2 − pad, is too: §6), at least 8 input
 * channels and 4 output ones (with fewer, the 16 GEMMs are too thin for the transforms to pay: 4→16 ran at
 * 0.91× the direct kernel, 8→16 at 1.22×), and its weights and scratch within the caps above.
 */
export function winogradFits(k: KernelExports, g: ConvGeometry, N: number, s: WinogradShape): boolean {
  return (
    winogradOn &&
    g.kh === 3 &&
    g.kw === 3 &&
    g.sh === 1 &&
    g.sw === 1 &&
    g.dh === 1 &&
    g.dw === 1 &&
    s.padTop >= 0 &&
    s.padTop <= 2 &&
    s.padLeft >= 0 &&
    s.padLeft <= 2 &&
    s.C >= 8 &&
    s.O >= 4 &&
    16 * s.O * s.C * 16 <= WINOGRAD_MAX_PACKED_BYTES &&
    winogradScratchBytes(k, N, s) <= WINOGRAD_MAX_THREAD_SCRATCH_BYTES
  );
}

/** Scratch bytes per thread of s on N images: asked of the kernels once per shape (fits, then runs). */
function winogradScratchBytes(k: KernelExports, N: number, s: WinogradShape): number {
  if (s.scratchImages !== N) {
    s.scratch = k.winogradThreadScratchBytes(N, s.C, s.H, s.W, s.O, s.padTop, s.padLeft, s.OH, s.OW);
    s.scratchImages = N;
  }
  return s.scratch;
}

/**
 * y (N, O, OH, OW) = conv3×3(x (N, C, H, W)) (+ bias) by Winograd on the thread pool, the operands already
 * in linear memory: wp holds g (O, C, 3, 3), or when `flipped` the (C, O, 3, 3) weights whose transposed
 * 180°-rotated kernel is g (the input gradient's convolution, §6). Parts: groups of images.
 */
function winogradConv(
  k: KernelExports,
  T: number,
  N: number,
  s: WinogradShape,
  xp: number,
  wp: number,
  flipped: boolean,
  bp: number,
  yp: number,
): void {
  const { C, H, W, O, padTop, padLeft, OH, OW } = s;
  const upack = alloc(k.winogradPackedBytes(C, O));
  // prettier-ignore
  runParts(Part.WinogradPackWeights, T, T === 1 ? 1 : 4, 0, 0,
    O, C, wp, +flipped, upack, alloc(16 * O * C * 4));
  const groups = Math.ceil(N / k.winogradGroupImages(OH, OW));
  const parts = T === 1 ? 1 : Math.min(groups, MAX_PARTS);
  const stride = winogradScratchBytes(k, N, s);
  const ws = alloc(T * stride);
  // prettier-ignore
  runParts(Part.WinogradForward, T, parts, ws, stride,
    N, C, H, W, O, padTop, padLeft, OH, OW, xp, upack, bp, yp);
}

/** Most scratch bytes one thread of a GEMM convolution (its col_n) or its packed weights may take. */
const CONV_MAX_SCRATCH_BYTES = 1 << 30;

/**
 * The GEMM convolution's scratch per thread (convThreadScratchBytes), after checking that it and the packed
 * weights are within CONV_MAX_SCRATCH_BYTES, where every offset conv.as computes fits an i32; else a
 * RangeError naming the convolution, before anything is written.
 */
function gemmConvScratch(k: KernelExports, g: ConvGeometry, O: number): number {
  const { C, kh, kw, OH, OW } = g;
  const stride = k.convThreadScratchBytes(C, O, kh, kw, OH, OW);
  const packed = k.convPackedBytes(C, O, kh, kw);
  if (stride <= CONV_MAX_SCRATCH_BYTES && packed <= CONV_MAX_SCRATCH_BYTES) return stride;
  const mib = (bytes: number) => `${String(Math.ceil(bytes / 2 ** 20))} MiB`;
  throw new RangeError(
    `handprop: a ${String(kh)}×${String(kw)} convolution of ${String(C)} → ${String(O)} channels with a ` +
      `${String(OH)}×${String(OW)} output needs ${mib(Math.max(stride, packed))} of WebAssembly scratch per ` +
      `image, more than the kernels take (${mib(CONV_MAX_SCRATCH_BYTES)}): use smaller images or fewer channels`,
  );
}

/** Conv2D forward/backward for one layer (float32, NCHW, weights (O, C, kh, kw)). */
export class WasmConv2D {
  private readonly views = new ViewCache();
  private readonly forwardShape = new WinogradShape();
  private readonly inputGradientShape = new WinogradShape();

  /** y = conv(x, w) + b (b null: no bias). x (N, C, H, W) and y (N, O, OH, OW) as in g. */
  forward(g: ConvGeometry, O: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const K = C * kh * kw;
    const T = threadsFor(N * O * K * OH * OW);
    const k = begin(T);
    const v = this.views;
    const xp = v.input(0, x);
    const wp = v.input(1, w);
    const bp = b === null ? 0 : v.input(2, b);
    const yp = v.output(y);
    const forward = this.forwardShape.of(g, O, false);
    if (winogradFits(k, g, N, forward)) {
      winogradConv(k, T, N, forward, xp, wp, false, bp, yp);
    } else {
      const stride = gemmConvScratch(k, g, O);
      const apack = alloc(k.convPackedBytes(C, O, kh, kw));
      const parts = T === 1 ? 1 : Math.min(N, MAX_PARTS); // an image per part
      const ws = alloc(T * stride);
      k.packA(0, O, K, 1, wp, K, apack);
      // prettier-ignore
      runParts(Part.ConvForward, T, parts, ws, stride,
        N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, apack, bp, yp);
    }
    v.take(3, yp, y);
  }

  /** The backward's operands: fill with grads.of(…) and pass to backward. */
  readonly grads = new GradCall();

  /** dW += ∂L/∂W, db += ∂L/∂b, dx = ∂L/∂x as in c (GradCall), x (c.x) being the forward's input. */
  backward(g: ConvGeometry, O: number, c: GradCall): void {
    const { N, C, H, W, kh, kw, padTop, padLeft, OH, OW } = g;
    const K = C * kh * kw;
    const T = threadsFor(N * O * K * OH * OW * (c.dx === null ? 1 : 2));
    const k = begin(T);
    c.placeIn();
    // By Winograd (derivation §6) where it fits: dW and db as the forward's adjoint; dx as the convolution of
    // dy (O channels) with the transposed, rotated kernel, padded by 2 − pad before each axis, output H × W.
    const forward = this.forwardShape.of(g, O, false);
    const inputGradient = this.inputGradientShape.of(g, O, true);
    const dWWinograd = winogradFits(k, g, N, forward);
    const dxWinograd = c.dx !== null && winogradFits(k, g, N, inputGradient);
    // dx first: each step below reserves its memory before it runs, so a call that cannot get it (a RangeError)
    // fails before anything has been added into dW or db — never half-way through their accumulation
    if (dxWinograd) winogradConv(k, T, N, inputGradient, c.dyp, c.wp, true, 0, c.dxp);
    else if (c.dx !== null && dWWinograd) this.directBackward(k, T, g, O, c, false, c.dxp);
    if (dWWinograd) {
      const chunks = k.winogradWeightChunks(N, OH, OW);
      const partials = alloc(k.winogradPartialBytes(C, O, chunks));
      const stride = winogradScratchBytes(k, N, forward);
      const ws = alloc(T * stride);
      // prettier-ignore
      runParts(Part.WinogradWeightGrad, T, chunks, ws, stride,
        N, C, H, W, O, padTop, padLeft, OH, OW, c.xp, c.dyp, partials);
      // prettier-ignore
      runParts(Part.WinogradWeightGradFinish, T, evenParts(O, T), ws, stride,
        O, C, chunks, partials, c.dWp, N, OH * OW, c.dyp, c.dbp);
    }
    // the GEMM convolution's dW and db, with its dx in the same call where that is not Winograd's either
    else this.directBackward(k, T, g, O, c, true, dxWinograd ? 0 : c.dxp);
    c.copyOut();
  }

  /** The GEMM convolution's backward: dW and db (when withWeights), dx at dxp (0: not here). */
  private directBackward(
    k: KernelExports,
    T: number,
    g: ConvGeometry,
    O: number,
    c: GradCall,
    withWeights: boolean,
    dxp: number,
  ): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const K = C * kh * kw;
    const stride = gemmConvScratch(k, g, O);
    const apack = dxp === 0 ? 0 : alloc(k.convPackedBytes(C, O, kh, kw));
    // parts: blocks of dW's columns (each over every image), then an image of dx per part (see
    // convBackwardPart). One dW block per thread, their columns as even as blocks of 4 allow (LeNet-5's
    // first layer, K = 25: 12 and 13): each block reads all of dy, so more blocks (4 per thread, to even
    // out a first layer's load, where no dx parts do) read it more often, and were slower.
    const dWParts = !withWeights ? 0 : T === 1 ? 1 : Math.min(Math.max(1, K >> 2), T, MAX_PARTS - 1);
    const dxParts = dxp === 0 ? 0 : T === 1 ? 1 : Math.min(N, MAX_PARTS - dWParts);
    const ws = alloc(T * stride);
    if (dxp !== 0) k.packA(1, K, O, 1, c.wp, K, apack); // Wᵀ (K × O)
    // prettier-ignore
    runParts(Part.ConvBackward, T, dWParts + dxParts, ws, stride,
      dWParts, N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, c.xp, apack, c.dyp, c.dWp, c.dbp, dxp);
  }
}

const NO_ARRAY = new Float32Array(0);

/**
 * A weighted layer's backward call (conv and dense alike): its JS arrays — the forward's input x, W, dy,
 * the accumulators dW and db (null: no bias), dx (null: not wanted) — and, once placed, their addresses
 * in the call's arena (0 where absent). Each op owns one and refills it on every call: a step allocates
 * nothing.
 */
export class GradCall {
  private readonly views = new ViewCache();
  x: TypedArray = NO_ARRAY;
  w: TypedArray = NO_ARRAY;
  dy: TypedArray = NO_ARRAY;
  dW: TypedArray = NO_ARRAY;
  db: TypedArray | null = null;
  dx: TypedArray | null = null;
  xp = 0;
  wp = 0;
  dyp = 0;
  dWp = 0;
  dbp = 0;
  dxp = 0;

  /** Set the operands from the layer's arrays (the only parameter list of a weighted backward call). */
  of(x: TypedArray, w: TypedArray, dy: TypedArray, dW: TypedArray, db: TypedArray | null, dx: TypedArray | null): this {
    this.x = x;
    this.w = w;
    this.dy = dy;
    this.dW = dW;
    this.db = db;
    this.dx = dx;
    return this;
  }

  /**
   * Place the operands in the call's arena: copy in x, W, dy and the accumulators dW, db (the kernels add to
   * them); dx only gets its space.
   */
  placeIn(): void {
    const v = this.views;
    this.xp = v.input(0, this.x);
    this.wp = v.input(1, this.w);
    this.dyp = v.input(2, this.dy);
    this.dWp = v.input(3, this.dW);
    this.dbp = this.db === null ? 0 : v.input(4, this.db);
    this.dxp = this.dx === null ? 0 : v.output(this.dx);
  }

  /** Copy the accumulated dW, db and the wanted dx back out. */
  copyOut(): void {
    const v = this.views;
    v.take(3, this.dWp, this.dW);
    if (this.db !== null) v.take(4, this.dbp, this.db);
    if (this.dx !== null) v.take(5, this.dxp, this.dx);
  }
}

/** Dense forward/backward for one layer (float32; x (N, F), W (F, O), y (N, O)). */
export class WasmDense {
  private readonly views = new ViewCache();

  forward(N: number, F: number, O: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const T = threadsFor(N * F * O);
    const k = begin(T);
    const v = this.views;
    const xp = v.input(0, x);
    const wp = v.input(1, w);
    const bp = b === null ? 0 : v.input(2, b);
    const yp = v.output(y);
    const parts = evenParts(N, T); // rows of y
    const stride = k.denseThreadScratchBytes(N, F, parts);
    const ws = alloc(T * stride);
    runParts(Part.DenseForward, T, parts, ws, stride, N, F, O, xp, wp, bp, yp);
    v.take(3, yp, y);
  }

  /** The backward's operands: fill with grads.of(…) and pass to backward. */
  readonly grads = new GradCall();

  /** dW += xᵀ·dy, db += Σ dy, dx = dy·Wᵀ as in c (GradCall). */
  backward(N: number, F: number, O: number, c: GradCall): void {
    const T = threadsFor(N * F * O * (c.dx === null ? 1 : 2));
    const k = begin(T);
    c.placeIn();
    const parts = evenParts(Math.max(F, N), T); // rows of dW, and of dx
    const stride = k.denseThreadScratchBytes(N, F, parts);
    const ws = alloc(T * stride);
    runParts(Part.DenseBackward, T, parts, ws, stride, N, F, O, c.xp, c.wp, c.dyp, c.dWp, c.dbp, c.dxp);
    c.copyOut();
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
    NC: number,
    H: number,
    W: number,
    kh: number,
    kw: number,
    sh: number,
    sw: number,
    ph: number,
    pw: number,
    OH: number,
    OW: number,
    x: TypedArray,
    y: TypedArray,
    arg: Int32Array,
  ): void {
    const T = threadsForElements(x.length);
    begin(T);
    const v = this.views;
    const xp = v.input(0, x);
    const yp = v.output(y);
    const ap = v.output(arg);
    runParts(Part.MaxPoolForward, T, evenParts(NC, T), 0, 0, NC, H, W, kh, kw, sh, sw, ph, pw, OH, OW, xp, yp, ap);
    this.planes = NC;
    this.inPlane = H * W;
    this.outPlane = OH * OW;
    v.take(1, yp, y);
    v.takeInt32(0, ap, arg);
  }

  /** dx = 0, then dx[arg[o]] += dy[o] in order of o. */
  backward(dy: TypedArray, arg: Int32Array, dx: TypedArray): void {
    const T = threadsForStreaming(dx.length, residentOutput(dx));
    begin(T);
    const v = this.views;
    const dyp = v.input(2, dy);
    const ap = residentAddress(arg) >= 0 ? residentAddress(arg) : v.putInt32(1, arg);
    const dxp = v.output(dx);
    // by plane when these are the last forward's planes, else as one plane (one thread)
    const byPlane = this.planes * this.outPlane === dy.length && this.planes * this.inPlane === dx.length;
    const NC = byPlane ? this.planes : 1;
    // prettier-ignore
    runParts(Part.MaxPoolBackward, T, evenParts(NC, T), 0, 0,
      NC, byPlane ? this.inPlane : dx.length, byPlane ? this.outPlane : dy.length, dyp, ap, dxp);
    v.take(3, dxp, dx);
  }
}

/**
 * ReLU for one layer, bit for bit the same as the JS backend's loops (js.ts) (see wasm/elementwise.as),
 * without their branch mispredictions on activations of random sign.
 */
export class WasmReLU {
  private readonly views = new ViewCache();

  /** y = x > 0 ? x : 0 */
  forward(x: TypedArray, y: TypedArray): void {
    const n = x.length;
    const T = threadsForStreaming(n, residentOutput(y));
    begin(T);
    const xp = this.views.input(0, x);
    const yp = this.views.output(y);
    runParts(Part.ReluForward, T, evenParts(n >> 2, T), 0, 0, n, xp, yp);
    this.views.take(1, yp, y);
  }

  /** dx = y > 0 ? dy : 0 */
  backward(y: TypedArray, dy: TypedArray, dx: TypedArray): void {
    const n = y.length;
    const T = threadsForStreaming(n, residentOutput(dx));
    begin(T);
    const v = this.views;
    const yp = v.input(2, y);
    const dyp = v.input(3, dy);
    const dxp = v.output(dx);
    runParts(Part.ReluBackward, T, evenParts(n >> 2, T), 0, 0, n, yp, dyp, dxp);
    v.take(4, dxp, dx);
  }
}

/**
 * Work units per element of an optimizer update, for threadsFor: Adam's float64 divides and square root
 * cost about as much per element as 16 multiply-adds of a GEMM.
 */
const OPTIMIZER_WORK = 16;

/** True if a is a resident float32 array: the kernels read and write it where it lies. */
export function residentFloat32(a: TypedArray): a is Float32Array {
  return a instanceof Float32Array && isResident(a);
}

/** True if an update reads and writes the parameter and its gradient where they lie (both resident). */
function inPlace(w: TypedArray, grad: TypedArray): boolean {
  return residentFloat32(w) && residentFloat32(grad);
}

/**
 * Optimizer updates for one parameter (wasm/optim.as), bit for bit the JS reference (js.ts adamUpdate,
 * sgdUpdate): the parameter and its gradient are read where they lie when resident (the trainer's, see
 * backend.ts keepResident), else copied in, and so are the slots; each is updated in place on as many threads
 * as the size is worth (contiguous ranges of elements), and what was copied in is copied back.
 */
export class WasmOptimizer {
  private readonly views = new ViewCache();

  adam(w: TypedArray, grad: TypedArray, m: TypedArray, v: TypedArray, h: Float64Array): void {
    const n = w.length;
    const T = inPlace(w, grad) ? threadsForStreaming(n, true) : threadsFor(n * OPTIMIZER_WORK);
    begin(T, w);
    const hp = this.putScalars(h);
    const wp = this.views.input(0, w);
    const gp = this.views.input(1, grad);
    const mp = this.views.input(2, m);
    const vp = this.views.input(3, v);
    runParts(Part.AdamUpdate, T, evenParts(n >> 4, T), 0, 0, n, wp, gp, mp, vp, hp);
    const views = this.views;
    views.take(0, wp, w);
    views.take(2, mp, m);
    views.take(3, vp, v);
  }

  sgd(w: TypedArray, grad: TypedArray, buf: TypedArray | null, h: Float64Array): void {
    const n = w.length;
    const momentum = h[2] !== 0 && buf !== null;
    // resident parameters (the trainer's, see backend.ts keepResident) are updated where they lie: no copies
    // on this thread, so the update is worth splitting as any streaming op is
    const T = inPlace(w, grad) ? threadsForStreaming(n, true) : threadsFor(n * (momentum ? 4 : 2));
    begin(T, w);
    const hp = this.putScalars(h);
    const wp = this.views.input(0, w);
    const gp = this.views.input(1, grad);
    const bp = !momentum ? 0 : h[5] !== 0 ? this.views.output(buf) : this.views.input(2, buf); // first step: buf is written, not read
    runParts(Part.SgdUpdate, T, evenParts(n >> 4, T), 0, 0, n, wp, gp, bp, hp);
    this.views.take(0, wp, w);
    if (bp !== 0) this.views.take(2, bp, buf!);
  }

  /** Copy the update's float64 scalars into the arena. */
  private putScalars(h: Float64Array): number {
    return this.views.putFloat64(0, h);
  }
}

/**
 * BatchNorm forward/backward for one layer (float32 x (N, C, S), float64 per-channel statistics; see
 * wasm/norm.as), parallel over channels. Backward recomputes x̂ from x and the forward's μ, invStd.
 */
export class WasmBatchNorm {
  private readonly views = new ViewCache();
  /**
   * y = γ·x̂ + β (gamma, beta null: none). training: writes mean, variance, invStd from the batch; else
   * normalises with mean and invStd as given.
   */
  forward(
    N: number,
    C: number,
    S: number,
    training: boolean,
    eps: number,
    x: TypedArray,
    gamma: TypedArray | null,
    beta: TypedArray | null,
    mean: Float64Array,
    variance: Float64Array,
    invStd: Float64Array,
    y: TypedArray,
  ): void {
    const T = threadsForElements(x.length);
    begin(T);
    const v = this.views;
    const xp = v.input(0, x);
    const gp = gamma === null ? 0 : v.input(2, gamma);
    const bp = beta === null ? 0 : v.input(3, beta);
    const yp = v.output(y);
    // in training the kernel writes the statistics: only their space is needed
    const mp = training ? alloc(C * 8) : this.views.putFloat64(0, mean);
    const vp = alloc(C * 8);
    const ip = training ? alloc(C * 8) : this.views.putFloat64(2, invStd);
    runParts(Part.BatchNormForward, T, evenParts(C, T), 0, 0, N, C, S, +training, eps, xp, gp, bp, mp, vp, ip, yp);
    v.take(1, yp, y);
    if (!training) return;
    mean.set(this.views.float64(0, mp, C));
    variance.set(this.views.float64(1, vp, C));
    invStd.set(this.views.float64(2, ip, C));
  }

  /** Writes Σdy and Σ dy·x̂ per channel into sums (2·C: Σdy, then Σ dy·x̂) and dx unless it is null. */
  backward(
    N: number,
    C: number,
    S: number,
    training: boolean,
    x: TypedArray,
    gamma: TypedArray | null,
    mean: Float64Array,
    invStd: Float64Array,
    dy: TypedArray,
    sums: Float64Array,
    dx: TypedArray | null,
  ): void {
    const T = threadsForElements(x.length);
    begin(T);
    const v = this.views;
    const xp = v.input(4, x);
    const dyp = v.input(5, dy);
    const gp = gamma === null ? 0 : v.input(7, gamma); // not forward's slot 2: γ's address differs here, and a slot's view should stay put
    const dxp = dx === null ? 0 : v.output(dx);
    const mp = this.views.putFloat64(3, mean);
    const ip = this.views.putFloat64(4, invStd);
    const sp = alloc(2 * C * 8);
    // prettier-ignore
    runParts(Part.BatchNormBackward, T, evenParts(C, T), 0, 0,
      N, C, S, +training, xp, gp, mp, ip, dyp, sp, sp + 8 * C, dxp);
    sums.set(this.views.float64(5, sp, 2 * C));
    if (dx !== null) v.take(6, dxp, dx);
  }
}

/**
 * LayerNorm/GroupNorm forward/backward for one layer (float32 x (N, G, Cg, S), float64 1/σ per segment; see
 * wasm/norm.as): forward and dx parallel over segments, the dγ/dβ sums over channels. Backward reads the
 * forward's x̂. A layer without affine parameters runs with γ = 1, β = 0 (one array of each, kept).
 */
export class WasmGroupNorm {
  private readonly views = new ViewCache();
  private ones = new Float32Array(0);
  private zeros = new Float32Array(0);

  /** γ, or ones when there is none. */
  private scale(gamma: TypedArray | null, C: number): TypedArray {
    if (gamma !== null) return gamma;
    if (this.ones.length !== C) this.ones = new Float32Array(C).fill(1);
    return this.ones;
  }

  /** Writes x̂, y and invStd (one per segment, N·G). */
  forward(
    N: number,
    G: number,
    Cg: number,
    S: number,
    eps: number,
    x: TypedArray,
    gamma: TypedArray | null,
    beta: TypedArray | null,
    xhat: TypedArray,
    y: TypedArray,
    invStd: Float64Array,
  ): void {
    const C = G * Cg;
    const T = threadsForElements(x.length);
    begin(T);
    if (beta === null && this.zeros.length !== C) this.zeros = new Float32Array(C);
    const xp = this.views.input(0, x);
    const gp = this.views.put(1, this.scale(gamma, C));
    const bp = this.views.put(2, beta ?? this.zeros);
    const xhp = alloc(x.length * 4);
    const yp = this.views.output(y);
    const ip = alloc(N * G * 8);
    runParts(Part.GroupNormForward, T, evenParts(N * G, T), 0, 0, N, G, Cg, S, eps, xp, gp, bp, xhp, yp, ip);
    xhat.set(this.views.float32(3, xhp, x.length));
    this.views.take(4, yp, y);
    invStd.set(this.views.float64(0, ip, N * G));
  }

  /** Writes Σdy and Σ dy·x̂ per channel into sums (2·C: Σdy, then Σ dy·x̂) unless it is null, and dx unless it is null. */
  backward(
    N: number,
    G: number,
    Cg: number,
    S: number,
    dy: TypedArray,
    xhat: TypedArray,
    gamma: TypedArray | null,
    invStd: Float64Array,
    sums: Float64Array | null,
    dx: TypedArray | null,
  ): void {
    if (sums === null && dx === null) return; // no affine parameters, and nobody reads dx
    const C = G * Cg;
    const T = threadsForElements(dy.length);
    begin(T);
    const dyp = this.views.input(5, dy);
    const xhp = this.views.put(6, xhat);
    if (sums !== null) {
      const sp = alloc(2 * C * 8);
      const parts = evenParts(S === 1 ? Math.ceil(C / 4) : C, T); // S = 1: four channels (lanes) at a time
      runParts(Part.GroupNormAffine, T, parts, 0, 0, N, C, S, dyp, xhp, sp, sp + 8 * C);
      sums.set(this.views.float64(1, sp, 2 * C));
    }
    if (dx === null) return;
    const gp = this.views.put(8, this.scale(gamma, C)); // not forward's slot: each slot's view then stays put
    const ip = this.views.putFloat64(2, invStd);
    const dxp = this.views.output(dx);
    runParts(Part.GroupNormBackward, T, evenParts(N * G, T), 0, 0, N, G, Cg, S, dyp, xhp, gp, ip, dxp);
    this.views.take(7, dxp, dx);
  }
}

/**
 * addWasm's views, one cache per length: a residual network adds tensors of a few sizes in turn, and
 * views shared between them would be made anew on every call. Bounded: past 16 lengths it starts over.
 */
const addViewsByLength = new Map<number, ViewCache>();

function addViewsFor(n: number): ViewCache {
  let views = addViewsByLength.get(n);
  if (views === undefined) {
    if (addViewsByLength.size >= 16) addViewsByLength.clear();
    addViewsByLength.set(n, (views = new ViewCache()));
  }
  return views;
}

/**
 * out = a + b (float32, out may be a), copied in and out on the calling thread: a streaming op, split
 * across threads only under poolEveryCall (see threadsForStreaming).
 */
export function addWasm(a: Float32Array, b: Float32Array, out: Float32Array): void {
  const n = out.length;
  const T = threadsForStreaming(n, residentOutput(out) && isResident(a) && isResident(b));
  begin(T);
  const addViews = addViewsFor(n);
  const ap = a.length === n ? addViews.input(0, a) : addViews.put(0, a.subarray(0, n));
  const bp = b.length === n ? addViews.input(1, b) : addViews.put(1, b.subarray(0, n));
  const outp = addViews.output(out);
  runParts(Part.Add, T, evenParts(n >> 2, T), 0, 0, n, ap, bp, outp);
  addViews.take(2, outp, out);
}

/**
 * a.fill(0) for a resident a (a trainer's gradient: zeroGrad) by vector stores where it lies; false, doing
 * nothing, when a is not resident.
 */
export function zeroResidentWasm(a: Float32Array): boolean {
  if (!isResident(a)) return false;
  begin(1, a).fillZero(a.length, residentAddress(a));
  return true;
}

const amongViews = new ViewCache();
const amongPositions: number[] = []; // the table's entries' positions in the list, reused from call to call

/**
 * The position in `arrays` of the first resident float32 one holding a NaN or ±Infinity, or −1 (the others
 * are skipped: the caller checks them): one kernel call (elementwise.as firstNonFiniteAmong) scanning each
 * where it lies — the trainer's gradients and parameters.
 */
export function firstNonFiniteResidentWasm(arrays: readonly TypedArray[]): number {
  let count = 0;
  for (let i = 0; i < arrays.length; i++) {
    if (residentFloat32(arrays[i])) amongPositions[count++] = i;
  }
  if (count === 0) return -1;
  const k = begin(1, arrays[amongPositions[0]]);
  const table = alloc(count * 8);
  const entries = amongViews.int32(0, table, 2 * count);
  for (let e = 0; e < count; e++) {
    const a = arrays[amongPositions[e]];
    entries[2 * e] = residentAddress(a);
    entries[2 * e + 1] = a.length;
  }
  const found = k.firstNonFiniteAmong(count, table);
  return found < 0 ? -1 : amongPositions[found];
}

/** firstNonFiniteWasm's views, one cache per array checked (each parameter and gradient): no view per call. */
const finiteViews = new WeakMap<Float32Array, ViewCache>();

/**
 * The index of a's first NaN or ±Infinity, or −1 (elementwise.as firstNonFinite): a's copy into linear
 * memory and a SIMD scan take a few µs where the JS loop took 85 µs for LeNet-5's 61,706 parameters.
 */
export function firstNonFiniteWasm(a: Float32Array): number {
  const k = begin(1, a);
  let views = finiteViews.get(a);
  if (views === undefined) finiteViews.set(a, (views = new ViewCache()));
  return k.firstNonFinite(a.length, views.input(0, a));
}

/**
 * Depthwise Conv2D (groups = C, O = C·M) for one layer (float32; x (N, C, H, W), w (C·M, 1, kh, kw); see
 * wasm/depthwise.as): forward over input planes (n, c), backward over channels, each summing the images
 * in order, so every thread count gives the same bits.
 */
export class WasmDepthwiseConv2D {
  private readonly views = new ViewCache();

  /** y = depthwise(x, w) + b (b null: no bias), y (N, C·M, OH, OW). */
  forward(g: ConvGeometry, M: number, x: TypedArray, w: TypedArray, b: TypedArray | null, y: TypedArray): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const T = threadsFor(y.length * kh * kw);
    const k = begin(T);
    const v = this.views;
    const xp = v.input(0, x);
    const wp = v.input(1, w);
    const bp = b === null ? 0 : v.input(2, b);
    const yp = v.output(y);
    const stride = k.depthwiseThreadScratchBytes(M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
    const ws = alloc(T * stride);
    // prettier-ignore
    runParts(Part.DepthwiseForward, T, evenParts(N * C, T), ws, stride,
      N, C, H, W, M, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, wp, bp, yp);
    v.take(3, yp, y);
  }

  /** The backward's operands: fill with grads.of(…) and pass to backward. */
  readonly grads = new GradCall();

  /** dW += ∂L/∂W, db += ∂L/∂b, dx = ∂L/∂x as in c (GradCall), x (c.x) being the forward's input. */
  backward(g: ConvGeometry, M: number, c: GradCall): void {
    const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const T = threadsFor(c.dy.length * kh * kw * (c.dx === null ? 1 : 2));
    const k = begin(T);
    c.placeIn();
    const stride = k.depthwiseThreadScratchBytes(M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
    const ws = alloc(T * stride);
    // prettier-ignore
    runParts(Part.DepthwiseBackward, T, evenParts(C, T), ws, stride,
      N, C, H, W, M, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, c.xp, c.wp, c.dyp, c.dWp, c.dbp, c.dxp);
    c.copyOut();
  }
}

/**
 * A grouped Conv2D (1 < G < C, derivation.md §5.1) for one layer as G ungrouped ones on the GEMM kernels
 * (WasmConv2D): group g's input channels, weights (a contiguous block of w), bias and dy are gathered
 * into compact arrays, its y and dx scattered back. Same bits at every thread count, as WasmConv2D.
 */
export class WasmGroupedConv2D {
  private readonly op = new WasmConv2D();
  private source: ConvGeometry | null = null;
  private group!: ConvGeometry; // the source geometry with C/G input channels
  private x: Float32Array = new Float32Array(0);
  private y: Float32Array = new Float32Array(0);
  private blocks: (readonly TypedArray[])[] = []; // per array (w, b, dW, db): its G group blocks
  private blockSources: (TypedArray | null)[] = [];

  forward(
    g: ConvGeometry,
    G: number,
    O: number,
    x: TypedArray,
    w: TypedArray,
    b: TypedArray | null,
    y: TypedArray,
  ): void {
    const gg = this.geometryOf(g, G);
    const inPlane = g.H * g.W;
    const outPlane = g.OH * g.OW;
    const xg = (this.x = sized(this.x, g.N * gg.C * inPlane));
    const yg = (this.y = sized(this.y, g.N * (O / G) * outPlane));
    for (let gi = 0; gi < G; gi++) {
      copyChannels(x, g.C, gi * gg.C, xg, gg.C, 0, g.N, gg.C, inPlane);
      this.op.forward(gg, O / G, xg, this.block(0, w, G, gi), b === null ? null : this.block(1, b, G, gi), yg);
      copyChannels(yg, O / G, 0, y, O, (gi * O) / G, g.N, O / G, outPlane);
    }
  }

  /** The backward's operands: fill with grads.of(…) and pass to backward. */
  readonly grads = new GradCall();

  /** dW += ∂L/∂W, db += ∂L/∂b, dx = ∂L/∂x as in c (GradCall), x (c.x) being the forward's input. */
  backward(g: ConvGeometry, G: number, O: number, c: GradCall): void {
    const { x, w, dy, dW, db, dx } = c;
    const gg = this.geometryOf(g, G);
    const Og = O / G;
    const inPlane = g.H * g.W;
    const outPlane = g.OH * g.OW;
    const xg = (this.x = sized(this.x, g.N * gg.C * inPlane));
    const dyg = (this.y = sized(this.y, g.N * Og * outPlane));
    for (let gi = 0; gi < G; gi++) {
      copyChannels(x, g.C, gi * gg.C, xg, gg.C, 0, g.N, gg.C, inPlane);
      copyChannels(dy, O, gi * Og, dyg, Og, 0, g.N, Og, outPlane);
      const dWg = this.block(2, dW, G, gi);
      const dbg = db === null ? null : this.block(3, db, G, gi);
      // dx_g overwrites x_g's copy, which the kernel has read into linear memory by then
      this.op.backward(gg, Og, this.op.grads.of(xg, this.block(0, w, G, gi), dyg, dWg, dbg, dx === null ? null : xg));
      if (dx !== null) copyChannels(xg, gg.C, 0, dx, g.C, gi * gg.C, g.N, gg.C, inPlane);
    }
  }

  /** g with C/G input channels, made once per source geometry. */
  private geometryOf(g: ConvGeometry, G: number): ConvGeometry {
    if (this.source !== g || this.group.C * G !== g.C) {
      this.source = g;
      this.group = { ...g, C: g.C / G };
    }
    return this.group;
  }

  /** Group gi's block of a (w, b, dW or db: G equal contiguous blocks) as a view, made once per array. */
  private block(slot: number, a: TypedArray, G: number, gi: number): TypedArray {
    if (this.blockSources[slot] !== a || this.blocks[slot].length !== G) {
      const n = a.length / G;
      this.blockSources[slot] = a;
      this.blocks[slot] = Array.from({ length: G }, (_, i) => a.subarray(i * n, (i + 1) * n));
    }
    return this.blocks[slot][gi];
  }
}

/** buf if it has n elements, else a new Float32Array(n). */
function sized(buf: Float32Array, n: number): Float32Array {
  return buf.length === n ? buf : new Float32Array(n);
}

/**
 * For each image n of N: channels srcFrom … srcFrom + k − 1 of src (N, srcC, plane) → channels dstFrom … of
 * dst (N, dstC, plane). Gathers a group's channels into a compact (N, k, plane) array, or scatters them back.
 */
function copyChannels(
  src: TypedArray,
  srcC: number,
  srcFrom: number,
  dst: TypedArray,
  dstC: number,
  dstFrom: number,
  N: number,
  k: number,
  plane: number,
): void {
  const run = k * plane;
  for (let n = 0; n < N; n++) {
    const from = (n * srcC + srcFrom) * plane;
    const to = (n * dstC + dstFrom) * plane;
    for (let i = 0; i < run; i++) dst[to + i] = src[from + i];
  }
}
