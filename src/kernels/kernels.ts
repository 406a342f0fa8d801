// The operations layers run, as one typed interface with one implementation per backend:
//
//   jsBackend    src/kernels/js.ts            the readable reference, any dtype (docs/derivation.md links here)
//   wasmBackend  src/kernels/wasm-backend.ts  WebAssembly SIMD, float32, on 1…n threads
//
// and `kernels` (src/kernels/backend.ts), which a layer calls: it sends each forward to the current
// backend (float32 to "wasm" when that is selected, everything else to "js") and each backward to the
// backend that ran the matching forward. A layer never asks which one ran.
//
// The contract of every op pair:
//   - forward returns a saved context: the output `y` and exactly what backward needs (JS conv: the col
//     matrix; wasm conv: a copy of x). The context owns its buffers (y, dx, scratch) and is reused by the
//     next forward when passed back as `prev`, so steady-state training allocates nothing; a returned
//     array is valid until the same context's next forward/backward;
//   - backward(ctx, …, dy, …, needDx) accumulates parameter gradients (dW += …, db += …) and returns dx,
//     ∂L/∂x, in a buffer of the context; needDx = false skips computing dx (nobody reads a first
//     layer's) and the returned buffer's contents are then unspecified. Backward never writes into dy;
//   - parameters (w, b) and their gradients are the layer's NDArrays, passed to every call, never saved;
//   - the optimizer updates (adamUpdate, sgdUpdate) work in place on one parameter, its gradient and its
//     slots, and every backend gives the same bits (they evaluate the JS reference's float64 expressions).
//
// A device backend (WebGPU, buffers on the GPU, asynchronous read-back) fits the same shape: its
// contexts own device buffers (the saved activations never leave the device), `y` and the returned dx
// become NDArrays whose storage is read back only where host code touches it (see docs/ARCHITECTURE.md).

import type { DType, NDArray, TypedArray } from "../nd/ndarray.ts";
import type { ConvGeometry, WindowGeometry } from "./im2col.ts";

export type BackendName = "js" | "wasm";

/** Window geometry of a 2-D pooling over a batch (NCHW; PyTorch's semantics, floor mode). */
export interface PoolGeometry extends WindowGeometry {
  /** Implicit, clipped padding per axis. */
  readonly ph: number;
  readonly pw: number;
}

/** What every saved context carries: the backend whose backward consumes it. */
export interface SavedContext {
  readonly kernels: Kernels;
}

export interface Conv2DContext extends SavedContext {
  readonly geometry: ConvGeometry;
  readonly outChannels: number;
  /** Channel groups G (1: a plain convolution; C: depthwise), derivation.md §5.1. */
  readonly groups: number;
  /** (N, O, OH, OW), the weights' dtype. */
  readonly y: NDArray;
}

export interface DenseContext extends SavedContext {
  /** (N, O), the weights' dtype. */
  readonly y: NDArray;
}

export interface Pool2DContext extends SavedContext {
  readonly geometry: PoolGeometry;
  /** (N, C, OH, OW), x's dtype. */
  readonly y: NDArray;
}

export interface ReLUContext extends SavedContext {
  /** x's shape and dtype. */
  readonly y: NDArray;
}

/**
 * C[M×N] = α·op(A)[M×K]·op(B)[K×N] + β·C, op(X) = X or Xᵀ, on row-major arrays read from aOff/bOff/cOff
 * with leading dimensions lda/ldb/ldc (CBLAS with CblasRowMajor). One signature for every GEMM: the
 * dispatching gemm (gemm.ts), the reference loops (gemmJS) and the WebAssembly adapter (Gemm<Float32Array>).
 */
export type Gemm<Matrix extends TypedArray = TypedArray> = (
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: Matrix,
  aOff: number,
  lda: number,
  B: Matrix,
  bOff: number,
  ldb: number,
  beta: number,
  C: Matrix,
  cOff: number,
  ldc: number,
) => void;

/** A batch-norm layer's parameters and options, as its forward reads them (γ, β null: no affine map). */
export interface BatchNormParams {
  readonly gamma: NDArray | null;
  readonly beta: NDArray | null;
  readonly runningMean: NDArray;
  readonly runningVar: NDArray;
  readonly eps: number;
}

export interface BatchNormContext extends SavedContext {
  /** x's shape, the running statistics' dtype. */
  readonly y: NDArray;
  /**
   * The per-channel μ and 1/√(σ² + ε) this forward normalised with (the batch's in training, the running
   * statistics' in inference), float64; in training also the biased batch variance σ², which the layer
   * folds into its running variance. Valid until the context's next forward.
   */
  readonly mean: Float64Array;
  readonly invStd: Float64Array;
  readonly variance: Float64Array;
}

/**
 * What a group-norm forward saves (LayerNorm and GroupNorm, derivation.md §5.4): x̂ (kept by the backend)
 * and 1/σ per segment.
 */
export interface GroupNormContext extends SavedContext {
  /** x's shape; γ's dtype (x's without affine parameters). */
  readonly y: NDArray;
  /** 1/√(σ² + ε) of each of the N·G segments, float64. Valid until the context's next forward. */
  readonly invStd: Float64Array;
}

/**
 * A normalisation's backward (batch norm, group norm): dγ += Σ dy·x̂ and dβ += Σ dy per channel (dGamma,
 * dBeta null: no affine parameters), and dx (x's dtype; its values only when needDx) returned.
 */
export type NormBackward<C> = (
  ctx: C,
  gamma: NDArray | null,
  dy: NDArray,
  dGamma: NDArray | null,
  dBeta: NDArray | null,
  needDx: boolean,
) => NDArray;

export interface Kernels {
  readonly name: BackendName;

  /** C = α·op(A)·op(B) + β·C on row-major arrays with offsets and leading dimensions (gemm.ts). */
  gemm: Gemm;

  /**
   * y = conv(x, w) + b (b null: none); x (N, C, H, W), w (O, C/groups, kh, kw), the geometry of x's shape.
   * With groups G, output channels g·O/G … (g+1)·O/G − 1 read input channels g·C/G … (g+1)·C/G − 1 only
   * (derivation.md §5.1); C and O must be multiples of G.
   */
  conv2dForward(
    geometry: ConvGeometry,
    groups: number,
    x: NDArray,
    w: NDArray,
    b: NDArray | null,
    prev: Conv2DContext | null,
  ): Conv2DContext;
  /** dW += ∂L/∂W, db += ∂L/∂b; returns dx = ∂L/∂x (x's dtype). derivation.md §2.2, §5.1 (groups). */
  conv2dBackward(
    ctx: Conv2DContext,
    w: NDArray,
    dy: NDArray,
    dW: NDArray,
    db: NDArray | null,
    needDx: boolean,
  ): NDArray;

  /** y = x·W + b; x (N, F), W (F, O). */
  denseForward(x: NDArray, w: NDArray, b: NDArray | null, prev: DenseContext | null): DenseContext;
  /** dW += xᵀ·dy, db += Σ_n dy; returns dx = dy·Wᵀ (x's dtype). derivation.md §2.1. */
  denseBackward(ctx: DenseContext, w: NDArray, dy: NDArray, dW: NDArray, db: NDArray | null, needDx: boolean): NDArray;

  /** y = max over each window (ties: the first in row-major order; NaN wins). */
  maxPool2dForward(geometry: PoolGeometry, x: NDArray, prev: Pool2DContext | null): Pool2DContext;
  /** dx[argmax(o)] += dy[o]. derivation.md §2.3. */
  maxPool2dBackward(ctx: Pool2DContext, dy: NDArray, needDx: boolean): NDArray;

  /** y = mean over each window; the divisor counts padded cells when countIncludePad. */
  avgPool2dForward(
    geometry: PoolGeometry,
    countIncludePad: boolean,
    x: NDArray,
    prev: Pool2DContext | null,
  ): Pool2DContext;
  /** Each dy[o] spread evenly over its window. derivation.md §2.3. */
  avgPool2dBackward(ctx: Pool2DContext, dy: NDArray, needDx: boolean): NDArray;

  /** y = max(0, x). */
  reluForward(x: NDArray, prev: ReLUContext | null): ReLUContext;
  /** dx = dy ⊙ [y > 0]. derivation.md §2.5. */
  reluBackward(ctx: ReLUContext, dy: NDArray, needDx: boolean): NDArray;

  /**
   * One Adam step on one parameter, in place (the rule and its symbols: src/nn/optim.ts's Adam), with
   * h = [β₁, β₂, stepSize, sqrtBc2, ε, l2] (a Float64Array: no scalar is boxed on its way to the kernel):
   *   g = grad + l2·w;  m = β₁m + (1 − β₁)g;  v = β₂v + (1 − β₂)·g·g;  w = w − stepSize·(m / (√v / sqrtBc2 + ε)).
   * w, grad, m, v have one length and dtype; every backend evaluates each element in float64 in this order,
   * rounding to the dtype where it stores, so all give the same bits.
   */
  adamUpdate(w: TypedArray, grad: TypedArray, m: TypedArray, v: TypedArray, h: Float64Array): void;
  /**
   * One SGD step on one parameter, in place (src/nn/optim.ts's SGD), with h = [lr, wd, μ, keep, nesterov,
   * first] (the last two 0 or 1): μ = 0 or buf null: w = w − (grad + wd·w)·lr; otherwise g = grad + wd·w,
   * buf = first ? g : μ·buf + keep·g, u = nesterov ? g + μ·buf : buf, w = w − u·lr. Same bits on every
   * backend (see adamUpdate).
   */
  sgdUpdate(w: TypedArray, grad: TypedArray, buf: TypedArray | null, h: Float64Array): void;

  /** out[i] = a[i] + b[i] over out.length elements (out may be a): Add's forward, a graph's fan-out sum. */
  add(a: TypedArray, b: TypedArray, out: TypedArray): void;

  /**
   * A buffer for the output of a layer that fills it itself (Add, Multiply, their gradients): buf when it
   * still fits, else a new one. The WebAssembly backend makes it resident in linear memory while outputs are
   * internal to a model's pass (wasm-memory.ts), so the kernels that write and read it do so in place, as
   * for the outputs of its own ops; the JS backend reuses ordinary arrays.
   */
  outputBuffer(buf: NDArray | null, shape: readonly number[], dtype: DType): NDArray;

  /** The index of a's first NaN or ±Infinity, or −1: the trainer's check of every gradient and parameter. */
  firstNonFinite(a: TypedArray): number;

  /**
   * Batch normalisation of x (N, C, …) per channel C = x.shape[1] over the N·(positions) values of each
   * (derivation.md §2.4): y = γ·x̂ + β, x̂ = (x − μ)·invStd; γ, β null: 1 and 0. training: μ and the biased
   * variance σ² from the batch (two passes, summed in float64), invStd = 1/√(σ² + ε); otherwise μ =
   * runningMean, invStd = 1/√(runningVar + ε). The running statistics are read, never written: the
   * layer updates them from ctx.mean and ctx.variance. y has the running statistics' dtype (the layer's).
   */
  batchNormForward(x: NDArray, p: BatchNormParams, training: boolean, prev: BatchNormContext | null): BatchNormContext;
  /**
   * dγ += Σ dy·x̂, dβ += Σ dy per channel (dGamma, dBeta null: no affine parameters); returns dx (x's
   * dtype): training (γ/σ)·(1/m)·(m·dy − Σdy − x̂·Σ dy·x̂), inference (γ/σ)·dy. derivation.md §2.4.
   */
  batchNormBackward: NormBackward<BatchNormContext>;

  /**
   * Normalisation of contiguous segments (derivation.md §5.4): x viewed as (N, G, C/G, S), S = x.size/(N·C),
   * is normalised per segment (n, g) of m = (C/G)·S values with that segment's μ and biased σ² (summed in
   * float64), then y = γ_c·x̂ + β_c per channel c (γ, β of length C; null: 1 and 0). GroupNorm is (N, G, C)
   * as they are; LayerNorm over the last axes of m values is N = x.size/m, G = 1, C = m (so S = 1 and γ, β
   * are per normalised element). The same in training and inference.
   */
  groupNormForward(
    x: NDArray,
    N: number,
    groups: number,
    C: number,
    gamma: NDArray | null,
    beta: NDArray | null,
    eps: number,
    prev: GroupNormContext | null,
  ): GroupNormContext;
  /**
   * dγ_c += Σ dy·x̂, dβ_c += Σ dy over every element of channel c (dGamma, dBeta null: no affine parameters);
   * returns dx (x's dtype) = (1/σ)·(g − mean(g) − x̂·mean(g·x̂)) per segment, g = γ·dy. derivation.md §5.4.
   */
  groupNormBackward: NormBackward<GroupNormContext>;
}
