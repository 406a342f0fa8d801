// The WebAssembly backend: the Kernels interface (kernels.ts) over the per-op adapters of wasm-ops.ts,
// float32 only (the dispatcher in backend.ts sends everything else to the JS backend). Each context
// holds its op's adapter (whose cached views of linear memory make the steady state allocation-free) and
// what the backward needs. Its outputs are ordinary arrays, or, inside a model's pass, resident arrays in
// linear memory (output() below; wasm-memory.ts). The formulas
// are the JS backend's (js.ts, docs/derivation.md §2); the kernels sum in a different, also fixed, order.

import { NDArray, shapeSize, type DType, type TypedArray } from "../nd/ndarray.ts";
import { dimsShape, hasDims, ownContext, reuse, reuseContext } from "./buffers.ts";
import type { ConvGeometry } from "./im2col.ts";
import {
  BatchNormStats,
  GroupNormState,
  batchNormPositions,
  checkGroups,
  groupNormPositions,
  jsBackend,
  reluBackwardLoop,
} from "./js.ts";
import type {
  BatchNormContext,
  Conv2DContext,
  DenseContext,
  GroupNormContext,
  Kernels,
  Pool2DContext,
  PoolGeometry,
  ReLUContext,
} from "./kernels.ts";
import {
  WasmBatchNorm,
  WasmConv2D,
  type GradCall,
  WasmDense,
  WasmGroupNorm,
  WasmDepthwiseConv2D,
  WasmGroupedConv2D,
  WasmMaxPool2D,
  WasmOptimizer,
  WasmReLU,
  addWasm,
  firstNonFiniteWasm,
  gemmWasm,
} from "./wasm-ops.ts";
import { isResident, releaseResident, residentArray, residentOutputs } from "./wasm-memory.ts";

/**
 * An op's output buffer: buf when it still fits, else a new one. While outputs are internal to a model's
 * pass (setInternalOutputs) float32 outputs are resident in linear memory (wasm-memory.ts: the kernels
 * write and read them where they lie), otherwise ordinary arrays; a resident buffer replaced by one of
 * another shape gives its block back.
 *
 * A layer called on its own after a model's pass (a feature map, a probe) wants an ordinary output where
 * its context holds a resident one, which the model's next layer may still read as its saved input (until
 * that layer's own next forward: a backward may come first). So a buffer replaced by one of the other kind
 * is neither freed nor overwritten: it is kept as the new buffer's counterpart, and switching back reuses
 * it (no allocation when a model's passes and such calls alternate). A dropped context's counterparts go
 * with it (the resident ones' blocks then come back through wasm-memory's FinalizationRegistry).
 */
function output(buf: NDArray | null, dtype: DType, d0: number, d1: number, d2 = -1, d3 = -1): NDArray {
  const resident = dtype === "float32" && residentOutputs();
  if (buf !== null && isResident(buf.data) === resident && hasDims(buf, dtype, d0, d1, d2, d3)) return buf;
  let kept: NDArray | null = null; // the other kind's buffer, kept as the returned one's counterpart
  if (buf !== null) {
    const other = counterparts.get(buf) ?? null;
    counterparts.delete(buf);
    if (isResident(buf.data) === resident) {
      releaseResident(buf.data); // another shape: every reader of buf reruns before it reads again
      kept = other;
    } else {
      if (other !== null && isResident(other.data) === resident && hasDims(other, dtype, d0, d1, d2, d3)) {
        counterparts.set(other, buf);
        return other;
      }
      if (other !== null) releaseResident(other.data); // first: the new array may need its block
      kept = buf;
    }
  }
  const shape = dimsShape(d0, d1, d2, d3);
  const data = resident ? residentArray(Float32Array, shapeSize(shape)) : null;
  if (data !== null || !resident) {
    const made = data !== null ? new NDArray(data, shape) : reuse(null, shape, dtype);
    if (kept !== null) counterparts.set(made, kept);
    return made;
  }
  // past the blocks' limit: an ordinary array, the kept one (ordinary: buf or its counterpart) when it fits
  return kept !== null && hasDims(kept, dtype, d0, d1, d2, d3) ? kept : reuse(null, shape, dtype);
}

/** Each output buffer's counterpart of the other kind (resident or ordinary): see output. */
const counterparts = new WeakMap<NDArray, NDArray>();

/** output for a buffer shaped like `like` (rank 2 or 4, else an ordinary array as reuse gives). */
function outputLike(buf: NDArray | null, like: readonly number[], dtype: DType): NDArray {
  if (like.length === 4) return output(buf, dtype, like[0], like[1], like[2], like[3]);
  if (like.length === 2) return output(buf, dtype, like[0], like[1]);
  if (buf !== null && isResident(buf.data)) {
    releaseResident(buf.data);
    buf = null;
  }
  return reuse(buf, like, dtype);
}

/**
 * A weighted layer's forward input, as its backward reads it again. Inside a model's pass a caller's
 * float32 x (a first layer's: the batch) is copied once into a resident buffer, which the forward's kernel
 * and the backward's both read where it lies (each would copy x in); any other x (a pass's resident output,
 * float64, or outside a pass) is kept by reference.
 */
class SavedInput {
  private copy: Float32Array | null = null;

  of(x: TypedArray): TypedArray {
    if (!(x instanceof Float32Array) || isResident(x) || !residentOutputs()) return x;
    if (this.copy === null || this.copy.length !== x.length) {
      if (this.copy !== null) releaseResident(this.copy);
      this.copy = residentArray(Float32Array, x.length);
      if (this.copy === null) return x; // past the blocks' limit: copied in by each call, as before
    }
    this.copy.set(x);
    return this.copy;
  }
}

/** What every context of this backend says: which backend made it (the backward goes there too). */
abstract class WasmContext {
  readonly kernels: Kernels = wasmBackend;
}

class WasmConv2DContext extends WasmContext implements Conv2DContext {
  readonly op = new WasmConv2D();
  geometry!: ConvGeometry;
  outChannels = 0;
  groups = 1; // derivation.md §5.1: 1, C (depthwise) or another divisor of C (grouped)
  depthwise: WasmDepthwiseConv2D | null = null; // the depthwise kernels' adapter, made on first use
  grouped: WasmGroupedConv2D | null = null; // G ungrouped convolutions, made on first use
  y!: NDArray;
  // the forward's input (savedInput), from which the kernels recompute each image's col in backward
  readonly saved = new SavedInput();
  x: TypedArray = new Float32Array(0);
  xDtype: DType = "float32";
  dx: NDArray | null = null;
}

function conv2dForward(
  g: ConvGeometry,
  groups: number,
  x: NDArray,
  w: NDArray,
  b: NDArray | null,
  prev: Conv2DContext | null,
): Conv2DContext {
  // Depthwise convolutions (groups = C, derivation.md §5.1) have their own kernels; other grouped ones run
  // as one ungrouped convolution per group.
  if (groups !== 1) checkGroups(g, groups, w);
  const O = w.shape[0];
  const ctx = reuseContext(prev, WasmConv2DContext);
  ctx.geometry = g;
  ctx.outChannels = O;
  ctx.groups = groups;
  ctx.xDtype = x.dtype;
  const y = (ctx.y = output(ctx.y ?? null, w.dtype, g.N, O, g.OH, g.OW));
  const xData = (ctx.x = ctx.saved.of(x.data));
  const bData = b?.data ?? null;
  if (groups === 1) ctx.op.forward(g, O, xData, w.data, bData, y.data);
  else if (groups === g.C)
    (ctx.depthwise ??= new WasmDepthwiseConv2D()).forward(g, O / g.C, xData, w.data, bData, y.data);
  else (ctx.grouped ??= new WasmGroupedConv2D()).forward(g, groups, O, xData, w.data, bData, y.data);
  return ctx;
}

/** A weighted op's backward operands (GradCall) from the layer's arrays: x, W, dy, dW, db, the wanted dx. */
function gradsOf(
  op: { readonly grads: GradCall },
  x: TypedArray,
  w: NDArray,
  dy: NDArray,
  dW: NDArray,
  db: NDArray | null,
  dx: NDArray | null,
): GradCall {
  return op.grads.of(x, w.data, dy.data, dW.data, db === null ? null : db.data, dx === null ? null : dx.data);
}

const conv2dBackward: Kernels["conv2dBackward"] = (saved, w, dy, dW, db, needDx) => {
  const ctx = ownContext(saved, WasmConv2DContext);
  const g = ctx.geometry;
  const dx = (ctx.dx = output(ctx.dx, ctx.xDtype, g.N, g.C, g.H, g.W));
  const O = ctx.outChannels;
  const G = ctx.groups;
  const dxOut = needDx ? dx : null;
  if (G === 1) ctx.op.backward(g, O, gradsOf(ctx.op, ctx.x, w, dy, dW, db, dxOut));
  else if (G === g.C) ctx.depthwise!.backward(g, O / g.C, gradsOf(ctx.depthwise!, ctx.x, w, dy, dW, db, dxOut));
  else ctx.grouped!.backward(g, G, O, gradsOf(ctx.grouped!, ctx.x, w, dy, dW, db, dxOut));
  return dx;
};

class WasmDenseContext extends WasmContext implements DenseContext {
  readonly op = new WasmDense();
  readonly saved = new SavedInput();
  x!: NDArray;
  xData: TypedArray = new Float32Array(0); // x's elements as saved (savedInput)
  y!: NDArray;
  dx: NDArray | null = null;
}

function denseForward(x: NDArray, w: NDArray, b: NDArray | null, prev: DenseContext | null): DenseContext {
  const N = x.shape[0];
  const F = x.shape[1];
  const O = w.shape[1];
  const ctx = reuseContext(prev, WasmDenseContext);
  ctx.x = x;
  ctx.xData = ctx.saved.of(x.data);
  const y = (ctx.y = output(ctx.y ?? null, w.dtype, N, O));
  ctx.op.forward(N, F, O, ctx.xData, w.data, b?.data ?? null, y.data);
  return ctx;
}

const denseBackward: Kernels["denseBackward"] = (saved, w, dy, dW, db, needDx) => {
  const ctx = ownContext(saved, WasmDenseContext);
  const N = ctx.x.shape[0];
  const F = ctx.x.shape[1];
  const O = w.shape[1];
  const dx = (ctx.dx = output(ctx.dx, ctx.x.dtype, N, F));
  ctx.op.backward(N, F, O, gradsOf(ctx.op, ctx.xData, w, dy, dW, db, needDx ? dx : null));
  return dx;
};

class WasmMaxPool2DContext extends WasmContext implements Pool2DContext {
  readonly op = new WasmMaxPool2D();
  geometry!: PoolGeometry;
  y!: NDArray;
  xShape: readonly number[] = [];
  argmax = new Int32Array(0); // flat index into x of each output's winner
  dx: NDArray | null = null;
}

function maxPool2dForward(g: PoolGeometry, x: NDArray, prev: Pool2DContext | null): Pool2DContext {
  const ctx = reuseContext(prev, WasmMaxPool2DContext);
  ctx.geometry = g;
  ctx.xShape = x.shape;
  const y = (ctx.y = output(ctx.y ?? null, x.dtype, g.N, g.C, g.OH, g.OW));
  // the winners live where y does: resident beside a resident y, the backward then reads them in place
  if (ctx.argmax.length !== y.size || isResident(ctx.argmax) !== isResident(y.data)) {
    releaseResident(ctx.argmax);
    ctx.argmax = (isResident(y.data) ? residentArray(Int32Array, y.size) : null) ?? new Int32Array(y.size);
  }
  ctx.op.forward(g.N * g.C, g.H, g.W, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.OH, g.OW, x.data, y.data, ctx.argmax);
  return ctx;
}

function maxPool2dBackward(saved: Pool2DContext, dy: NDArray, needDx: boolean): NDArray {
  const ctx = ownContext(saved, WasmMaxPool2DContext);
  const dx = (ctx.dx = outputLike(ctx.dx, ctx.xShape, ctx.y.dtype));
  if (needDx) ctx.op.backward(dy.data, ctx.argmax, dx.data);
  return dx;
}

class WasmReLUContext extends WasmContext implements ReLUContext {
  readonly op = new WasmReLU();
  y!: NDArray;
  dx: NDArray | null = null;
}

function reluForward(x: NDArray, prev: ReLUContext | null): ReLUContext {
  const ctx = reuseContext(prev, WasmReLUContext);
  const y = (ctx.y = outputLike(ctx.y ?? null, x.shape, x.dtype));
  ctx.op.forward(x.data, y.data);
  return ctx;
}

function reluBackward(saved: ReLUContext, dy: NDArray, needDx: boolean): NDArray {
  const ctx = ownContext(saved, WasmReLUContext);
  const dx = (ctx.dx = outputLike(ctx.dx, dy.shape, ctx.y.dtype));
  if (!needDx) return dx;
  // a float64 dy would lose bits on its way into the float32 kernel: the JS loop takes it as it is
  if (dy.data instanceof Float32Array) ctx.op.backward(ctx.y.data, dy.data, dx.data);
  else reluBackwardLoop(ctx.y.data, dy.data, dx.data);
  return dx;
}

class WasmBatchNormContext extends BatchNormStats implements BatchNormContext {
  readonly kernels = wasmBackend;
  readonly op = new WasmBatchNorm();
  y!: NDArray;
  x!: NDArray; // the forward's input, by reference as for Dense: backward recomputes x̂ from it
  dx: NDArray | null = null;
  sums = new Float64Array(0); // backward's Σdy, then Σ dy·x̂, per channel
}

const batchNormForward: Kernels["batchNormForward"] = (x, p, training, prev) => {
  const ctx = reuseContext(prev, WasmBatchNormContext);
  const N = x.shape[0];
  const C = x.shape[1];
  const S = batchNormPositions(x);
  ctx.prepare(C, training, p);
  ctx.x = x;
  const y = (ctx.y = outputLike(ctx.y ?? null, x.shape, p.runningMean.dtype));
  const g = p.gamma?.data ?? null;
  const b = p.beta?.data ?? null;
  ctx.op.forward(N, C, S, training, p.eps, x.data, g, b, ctx.mean, ctx.variance, ctx.invStd, y.data);
  return ctx;
};

const batchNormBackward: Kernels["batchNormBackward"] = (saved, gamma, dy, dGamma, dBeta, needDx) => {
  const ctx = ownContext(saved, WasmBatchNormContext);
  const N = ctx.x.shape[0];
  const C = ctx.x.shape[1];
  const S = batchNormPositions(ctx.x);
  const dx = (ctx.dx = outputLike(ctx.dx, ctx.x.shape, ctx.x.dtype));
  if (ctx.sums.length !== 2 * C) ctx.sums = new Float64Array(2 * C);
  const sums = ctx.sums;
  const g = gamma?.data ?? null;
  ctx.op.backward(N, C, S, ctx.training, ctx.x.data, g, ctx.mean, ctx.invStd, dy.data, sums, needDx ? dx.data : null);
  // dγ += Σ dy·x̂, dβ += Σ dy: the float64 sums rounded once, as the JS backend adds them
  const dg = dGamma?.data;
  const db = dBeta?.data;
  for (let c = 0; c < C; c++) {
    if (dg) dg[c] += sums[C + c];
    if (db) db[c] += sums[c];
  }
  return dx;
};

class WasmGroupNormContext extends GroupNormState implements GroupNormContext {
  readonly kernels = wasmBackend;
  readonly op = new WasmGroupNorm();
  y!: NDArray;
  xhat = new Float32Array(0); // x̂ of the forward: backward reads it
  sums = new Float64Array(0); // backward's Σdy, then Σ dy·x̂, per channel
}

const groupNormForward: Kernels["groupNormForward"] = (x, N, groups, C, gamma, beta, eps, prev) => {
  const ctx = reuseContext(prev, WasmGroupNormContext);
  const S = groupNormPositions(x, N, C);
  ctx.prepare(x, N, groups, C);
  const y = (ctx.y = outputLike(ctx.y ?? null, x.shape, gamma?.dtype ?? x.dtype));
  if (ctx.xhat.length !== x.size) ctx.xhat = new Float32Array(x.size);
  const g = gamma?.data ?? null;
  const b = beta?.data ?? null;
  ctx.op.forward(N, groups, C / groups, S, eps, x.data, g, b, ctx.xhat, y.data, ctx.invStd);
  return ctx;
};

const groupNormBackward: Kernels["groupNormBackward"] = (saved, gamma, dy, dGamma, dBeta, needDx) => {
  const ctx = ownContext(saved, WasmGroupNormContext);
  const { N, groups, C } = ctx;
  const S = groupNormPositions(dy, N, C);
  const dx = (ctx.dx = outputLike(ctx.dx, dy.shape, ctx.xDtype));
  const affine = dGamma !== null || dBeta !== null;
  if (affine && ctx.sums.length !== 2 * C) ctx.sums = new Float64Array(2 * C);
  const sums = affine ? ctx.sums : null;
  ctx.op.backward(
    N,
    groups,
    C / groups,
    S,
    dy.data,
    ctx.xhat,
    gamma?.data ?? null,
    ctx.invStd,
    sums,
    needDx ? dx.data : null,
  );
  // dγ += Σ dy·x̂, dβ += Σ dy: the float64 sums over every sample rounded once
  const dg = dGamma?.data;
  const db = dBeta?.data;
  for (let c = 0; affine && c < C; c++) {
    if (dg) dg[c] += ctx.sums[C + c];
    if (db) db[c] += ctx.sums[c];
  }
  return dx;
};

/** The WebAssembly backend (float32 arrays only; usable when wasmAvailable()). */
export const wasmBackend: Kernels = {
  name: "wasm",
  gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc) {
    gemmWasm(
      transA,
      transB,
      M,
      N,
      K,
      alpha,
      A as Float32Array,
      aOff,
      lda,
      B as Float32Array,
      bOff,
      ldb,
      beta,
      C as Float32Array,
      cOff,
      ldc,
    );
  },
  conv2dForward,
  conv2dBackward,
  denseForward,
  denseBackward,
  maxPool2dForward,
  maxPool2dBackward,
  // no average-pooling kernel: the JS loops run it (their context sends the backward there too)
  avgPool2dForward: (g, countIncludePad, x, prev) => jsBackend.avgPool2dForward(g, countIncludePad, x, prev),
  avgPool2dBackward: (ctx, dy, needDx) => jsBackend.avgPool2dBackward(ctx, dy, needDx),
  reluForward,
  reluBackward,
  adamUpdate(w, grad, m, v, h) {
    optimizerOp(w).adam(w, grad, m, v, h);
  },
  sgdUpdate(w, grad, buf, h) {
    optimizerOp(w).sgd(w, grad, buf, h);
  },
  batchNormForward,
  batchNormBackward,
  add: (a, b, out) => {
    addWasm(a as Float32Array, b as Float32Array, out as Float32Array);
  },
  outputBuffer: outputLike,
  firstNonFinite: (a) => firstNonFiniteWasm(a as Float32Array),
  groupNormForward,
  groupNormBackward,
};

/** One optimizer adapter (and so one set of cached views) per parameter array: a step allocates nothing. */
const optimizerOps = new WeakMap<TypedArray, WasmOptimizer>();

function optimizerOp(w: TypedArray): WasmOptimizer {
  let op = optimizerOps.get(w);
  if (op === undefined) optimizerOps.set(w, (op = new WasmOptimizer()));
  return op;
}
