// Conv2D: 2-D convolution over NCHW images — strictly a cross-correlation (the kernel is not flipped),
// as in PyTorch, TF/Keras and every other deep-learning library:
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// with W stored (outChannels, inChannels, kh, kw) as in PyTorch and x_pad the input with zero padding.
// Computed as im2col + GEMM (src/kernels/im2col.ts): the receptive fields of the whole batch become the
// columns of col (C·kh·kw × N·OH·OW), and each image's output plane block is W · col_n. The direct
// seven-loop version, the oracle the tests compare against, is src/kernels/conv_ref.ts.
//
// float32 with the "wasm" backend (src/kernels/backend.ts) runs forward and backward as single calls into
// the WebAssembly SIMD kernels (src/kernels/wasm/conv.as: im2col + GEMM image by image). That path keeps
// a copy of the input instead of the batch's col matrix and recomputes each image's col in backward.

import type { NDArray, DType } from "../nd/ndarray.ts";
import { formatShape } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { gemm } from "../kernels/gemm.ts";
import { col2im, convGeometry, im2col, type ConvGeometry } from "../kernels/im2col.ts";
import { useWasm } from "../kernels/backend.ts";
import { WasmConv2D } from "../kernels/wasm.ts";
import { initialize, checkInit, type InitName } from "./init.ts";
import { Layer, ShapeError, makeParam, nonNegativeInt, pair, positiveInt, reuse, type LayerConfig, type Param } from "./layer.ts";

/**
 * Zero padding: n (all sides), [ph, pw] (ph rows top and bottom, pw columns left and right),
 * "valid" (none) or "same" (output size ⌈size / stride⌉, TF/Keras rules, see {@link samePadding}).
 */
export type Conv2DPadding = number | readonly [number, number] | "same" | "valid";

export interface Conv2DOptions {
  /** Input channels C; optional: when left out it is taken from the first input shape seen (Keras-style). */
  inChannels?: number;
  outChannels: number;
  /**
   * Split the channels into `groups` independent convolutions (default 1): output channels
   * o·(O/g) … (o+1)·(O/g) − 1 read only input channels of group o. C and O must be multiples of it
   * (derivation.md §4.1). groups = C is a depthwise convolution.
   */
  groups?: number;
  /** k or [kh, kw]. */
  kernelSize: number | readonly [number, number];
  /** s or [sh, sw] (default 1). */
  stride?: number | readonly [number, number];
  /** Default "valid". */
  padding?: Conv2DPadding;
  /** d or [dh, dw] (default 1): kernel taps d pixels apart, so the kernel spans d·(k − 1) + 1. */
  dilation?: number | readonly [number, number];
  /** Add a per-output-channel bias b (default true). */
  bias?: boolean;
  /** Weight initialiser (default he_normal, fanIn = inChannels·kh·kw); biases start at 0. */
  init?: InitName;
  dtype?: DType;
  /** Draw the initial weights from this generator (default: RandomState(0)). */
  rng?: RandomState;
}

/**
 * TF/Keras "same" padding along one axis: output size out = ⌈size / s⌉ and total padding
 * max((out − 1)·s + d·(k − 1) + 1 − size, 0), split with the odd row/column at the end (bottom/right).
 * Returns [before, after]. With stride 1 the total is d·(k − 1) whatever the size; with larger strides
 * it depends on the size, which is why Conv2D resolves "same" per input shape.
 */
export function samePadding(size: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + d * (k - 1) + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function checkPadding(v: unknown, layer: string): Conv2DPadding {
  if (v === "same" || v === "valid") return v;
  if (typeof v === "number") return nonNegativeInt(layer, "padding", v);
  if (Array.isArray(v)) {
    const [ph, pw] = pair(layer, "padding", v as [number, number], nonNegativeInt);
    return [ph, pw];
  }
  throw new RangeError(`${layer}: padding must be a non-negative integer, [ph, pw], "same" or "valid", got ${JSON.stringify(v)}`);
}

/** A pair written back compactly for config(): n when both halves agree. */
export function compact([a, b]: readonly [number, number]): number | [number, number] {
  return a === b ? a : [a, b];
}

export class Conv2D extends Layer {
  readonly type: string = "Conv2D";
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly dilation: [number, number];
  /** The padding option as given (validated). */
  readonly padding: Conv2DPadding;
  readonly useBias: boolean;
  readonly init: InitName;
  // Channels and parameters: null until the input channels are known (given, or inferred at build).
  protected channelsIn: number | null;
  protected channelsOut: number | null;
  protected groupCount: number;
  private weightParam: Param | null = null;
  private biasParam: Param | null = null;
  private dtype: DType;
  private readonly rng: RandomState;
  // Fixed [top, bottom, left, right] for numeric/"valid" padding, and for "same" at stride 1 (where it
  // does not depend on the input size); null when "same" must be resolved per input shape.
  private readonly fixedPadding: [number, number, number, number] | null;
  private geometry: ConvGeometry | null = null; // of the last forward's batch shape
  private col: NDArray | null = null; // im2col of the last input: ∂L/∂W = dy · colᵀ needs it
  private y: NDArray | null = null;
  private dcol: NDArray | null = null;
  private dx: NDArray | null = null;
  private xDtype: DType = "float32";
  private wasm: WasmConv2D | null = null;
  private xCopy: Float32Array | null = null; // wasm path: the last input, for backward (null: JS path ran)
  private xDepthwise: NDArray | null = null; // depthwise path (one input channel per group): the input, for dW

  constructor(opts: Conv2DOptions, layer = "Conv2D") {
    super();
    if (typeof opts !== "object" || opts === null) throw new TypeError(`${layer}: expected an options object`);
    this.channelsIn = opts.inChannels === undefined ? null : positiveInt(layer, "inChannels", opts.inChannels);
    this.channelsOut = opts.outChannels === undefined && layer !== "Conv2D" ? null : positiveInt(layer, "outChannels", opts.outChannels);
    this.groupCount = positiveInt(layer, "groups", opts.groups ?? 1);
    this.kernelSize = pair(layer, "kernelSize", opts.kernelSize, positiveInt);
    this.stride = pair(layer, "stride", opts.stride ?? 1, positiveInt);
    this.dilation = pair(layer, "dilation", opts.dilation ?? 1, positiveInt);
    this.padding = checkPadding(opts.padding ?? "valid", layer);
    if (opts.bias !== undefined && typeof opts.bias !== "boolean") throw new RangeError(`${layer}: bias must be true or false, got ${JSON.stringify(opts.bias)}`);
    this.useBias = opts.bias ?? true;
    this.init = checkInit(layer, opts.init ?? "he_normal");
    const dtype = opts.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") throw new RangeError(`${layer}: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);
    this.dtype = dtype;
    this.rng = opts.rng ?? new RandomState(0);
    if (this.channelsOut !== null && this.channelsOut % this.groupCount !== 0) {
      throw new RangeError(`${layer}: outChannels (${this.channelsOut}) must be a multiple of groups (${this.groupCount})`);
    }

    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [dh, dw] = this.dilation;
    const p = this.padding;
    if (p === "valid") this.fixedPadding = [0, 0, 0, 0];
    else if (p === "same") this.fixedPadding = sh === 1 && sw === 1 ? [...samePadding(1, kh, 1, dh), ...samePadding(1, kw, 1, dw)] : null;
    else if (typeof p === "number") this.fixedPadding = [p, p, p, p];
    else this.fixedPadding = [p[0], p[0], p[1], p[1]];
    // (DepthwiseConv2D, whose outChannels follow from the input's, resolves in its own constructor)
    if (this.channelsIn !== null && this.channelsOut !== null) this.resolveChannels(this.channelsIn);
  }

  /** Input channels C (throws while they are still to be inferred from the input shape). */
  get inChannels(): number {
    return this.channelsIn ?? this.unresolved("inChannels");
  }

  get outChannels(): number {
    return this.channelsOut ?? this.unresolved("outChannels");
  }

  get groups(): number {
    return this.groupCount;
  }

  /** The kernel, (O, C/groups, kh, kw). */
  get weight(): Param {
    return this.weightParam ?? this.unresolved("weight");
  }

  get bias(): Param | null {
    return this.useBias ? (this.biasParam ?? this.unresolved("bias")) : null;
  }

  /** True once the input channels are known and the parameters exist. */
  override isBuilt(): boolean {
    return this.weightParam !== null;
  }

  private unresolved(what: string): never {
    throw new Error(`${this.describe()}: ${what} is not known yet: give inChannels, or build the model with an inputShape (or run a forward pass) first`);
  }

  /**
   * Fix the input channels (given or inferred, Keras's build()) and create the parameters, drawing the
   * weights from the layer's generator. Later inputs must have the same channel count.
   */
  protected resolveChannels(C: number): void {
    if (this.weightParam !== null) {
      if (C !== this.channelsIn) this.shapeError(`(N, ${this.channelsIn}, H, W)`, [NaN, C, NaN, NaN]);
      return;
    }
    this.configureChannels(C);
    const O = this.outChannels;
    const G = this.groupCount;
    if (C % G !== 0) throw new ShapeError(`${this.describe()}: input channels (${C}) must be a multiple of groups (${G})`);
    if (O % G !== 0) throw new ShapeError(`${this.describe()}: outChannels (${O}) must be a multiple of groups (${G})`);
    this.channelsIn = C;
    const [kh, kw] = this.kernelSize;
    this.weightParam = makeParam("weight", [O, C / G, kh, kw], this.dtype);
    this.biasParam = this.useBias ? makeParam("bias", [O], this.dtype) : null;
    this.initialize(this.rng);
  }

  /** Hook for layers whose output channels follow from the input's (DepthwiseConv2D). */
  protected configureChannels(_C: number): void {
    /* Conv2D: outChannels and groups are given */
  }

  override initialize(rng: RandomState): void {
    if (this.weightParam === null) return; // drawn when the input channels become known
    const [kh, kw] = this.kernelSize;
    const G = this.groupCount;
    initialize(this.weightParam.value, this.init, (this.inChannels / G) * kh * kw, this.outChannels * kh * kw, rng);
    this.biasParam?.value.data.fill(0);
  }

  override params(): Param[] {
    if (this.weightParam === null) return [];
    return this.biasParam ? [this.weightParam, this.biasParam] : [this.weightParam];
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  /** Zero padding [top, bottom, left, right] applied to an H×W input. */
  paddingFor(H: number, W: number): [number, number, number, number] {
    if (this.fixedPadding !== null) return [...this.fixedPadding];
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [dh, dw] = this.dilation;
    return [...samePadding(H, kh, sh, dh), ...samePadding(W, kw, sw, dw)];
  }

  outputShape(inputShape: readonly number[]): number[] {
    const [C, H, W] = inputShape;
    const known = this.channelsIn;
    if (inputShape.length !== 3 || (known !== null && C !== known) || !inputShape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ShapeError(`${this.describe()}: expected input samples of shape (${known ?? "C"}, H, W), got ${formatShape(inputShape)}`);
    }
    this.resolveChannels(C);
    const g = this.checkedGeometry(1, H, W);
    return [this.outChannels, g.OH, g.OW];
  }

  // Geometry of a forward on (N, C, H, W), throwing when the dilated kernel does not fit.
  private checkedGeometry(N: number, H: number, W: number): ConvGeometry {
    const pad = this.paddingFor(H, W);
    const g = convGeometry(N, this.inChannels, H, W, this.kernelSize, this.stride, pad, this.dilation);
    if (g.OH < 1 || g.OW < 1) {
      const [kh, kw] = this.kernelSize;
      const [dh, dw] = this.dilation;
      const dilated = dh === 1 && dw === 1 ? "" : ` (dilated ${dh * (kh - 1) + 1}×${dw * (kw - 1) + 1})`;
      const given = typeof this.padding === "string" ? `"${this.padding}"` : JSON.stringify(this.padding);
      throw new ShapeError(
        `${this.describe()}: kernel ${kh}×${kw}${dilated} is larger than the padded input ` +
          `${H + pad[0] + pad[1]}×${W + pad[2] + pad[3]} (input ${H}×${W}, padding ${given})`,
      );
    }
    return g;
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, this.channelsIn, null, null], ["N", "C", "H", "W"]);
    this.resolveChannels(x.shape[1]);
    const [N, , H, W] = x.shape;
    const prev = this.geometry;
    const g = prev !== null && prev.N === N && prev.H === H && prev.W === W ? prev : (this.geometry = this.checkedGeometry(N, H, W));
    const { C, kh, kw, OH, OW } = g;
    const O = this.outChannels;
    const K = C * kh * kw; // rows of col = columns of W viewed as (O, C·kh·kw)
    const OHW = OH * OW;
    const dtype = this.weight.value.dtype;

    // The WebAssembly kernel knows ungrouped convolutions only; grouped ones run on the JS loops.
    if (this.groupCount === 1 && useWasm(x.data, this.weight.value.data)) {
      const y = (this.y = reuse(this.y, [N, O, OH, OW], dtype));
      if (this.xCopy?.length !== x.size) this.xCopy = new Float32Array(x.size);
      this.xCopy.set(x.data);
      this.col = null;
      (this.wasm ??= new WasmConv2D()).forward(g, O, x.data, this.weight.value.data, this.bias?.value.data ?? null, y.data);
      this.xDtype = x.dtype;
      return y;
    }
    this.xCopy = null;
    this.xDepthwise = null;
    if (this.groupCount === C && C > 1) {
      this.xDtype = x.dtype;
      return this.depthwiseForward(g, x);
    }

    const col = (this.col = reuse(this.col, [K, N * OHW], dtype));
    im2col(g, x.data, 0, col.data);

    // y[n] = W · col_n + b        (O × K) · (K × OH·OW), col_n = columns n·OH·OW … (n+1)·OH·OW − 1
    // With G groups, block g of output channels is W_g · col_n restricted to group g's rows (§4.1):
    //   (O/G × K/G) · (K/G × OH·OW); the rows of col are channel-major, so group g's are contiguous.
    const G = this.groupCount;
    const Og = O / G;
    const Kg = K / G;
    const y = (this.y = reuse(this.y, [N, O, OH, OW], dtype));
    const w = this.weight.value.data;
    if (this.bias) {
      const b = this.bias.value.data;
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) y.data.fill(b[o], (n * O + o) * OHW, (n * O + o + 1) * OHW);
    }
    const beta = this.bias ? 1 : 0;
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        gemm(false, false, Og, OHW, Kg, 1, w, gi * Og * Kg, Kg, col.data, gi * Kg * N * OHW + n * OHW, N * OHW, beta, y.data, (n * O + gi * Og) * OHW, OHW);
      }
    }
    this.xDtype = x.dtype;
    return y;
  }

  // Backward (derivation.md §2.2, Conv2D). With y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q]·x_pad[n,c,i·sh+p·dh, j·sw+q·dw]
  // and col[(c,p,q), (n,i,j)] = x_pad[n,c,i·sh+p·dh, j·sw+q·dw], i.e. y_n = W·col_n + b:
  //   ∂L/∂W[o,c,p,q] = Σ_{n,i,j} dy[n,o,i,j] · x_pad[n,c,i·sh+p·dh, j·sw+q·dw]
  //                  = Σ_n dy_n · col_nᵀ       (O×OH·OW · OH·OW×K)      accumulated: dW += …
  //   ∂L/∂b[o]       = Σ_{n,i,j} dy[n,o,i,j]                            accumulated: db += …
  //   ∂L/∂x          = col2im(Wᵀ · dy_n)       (K×O · O×OH·OW), col2im summing every tap that read a pixel
  //                    and dropping the padding. For stride 1 and no dilation this is the "full"
  //                    convolution of dy with W: dy correlated with the 180°-rotated kernel.
  // Grouped (derivation.md §4.1): the same three products per group g, on W_g, dy's channel block g and
  // col's row block g; other blocks of W are structurally zero and get no gradient.
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const g = this.geometry!;
    if (this.xCopy !== null && this.wasm !== null) {
      // the forward ran on the wasm backend: so does its backward (dy is float32 like the output)
      const dx = (this.dx = reuse(this.dx, [g.N, g.C, g.H, g.W], this.xDtype));
      const wantDx = this.skipInputGrad ? null : dx.data;
      this.wasm.backward(g, this.outChannels, this.xCopy, this.weight.value.data, dy.data, this.weight.grad.data, this.bias?.grad.data ?? null, wantDx);
      return dx;
    }
    if (this.xDepthwise !== null) return this.depthwiseBackward(g, this.xDepthwise, dy);
    const col = this.col!;
    const { N, C, H, W, kh, kw, OH, OW } = g;
    const O = this.outChannels;
    const K = C * kh * kw;
    const OHW = OH * OW;
    const ldCol = N * OHW;
    const w = this.weight.value.data;

    const G = this.groupCount;
    const Og = O / G;
    const Kg = K / G;
    const dW = this.weight.grad.data;
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        gemm(false, true, Og, Kg, OHW, 1, dy.data, (n * O + gi * Og) * OHW, OHW, col.data, gi * Kg * ldCol + n * OHW, ldCol, 1, dW, gi * Og * Kg, Kg);
      }
    }
    if (this.bias) {
      const db = this.bias.grad.data;
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < O; o++) {
          const start = (n * O + o) * OHW;
          let sum = 0;
          for (let s = 0; s < OHW; s++) sum += dy.data[start + s];
          db[o] += sum;
        }
      }
    }

    // dcol_n = Wᵀ · dy_n, then scatter-add back to pixel positions.
    const dcol = (this.dcol = reuse(this.dcol, [K, ldCol], this.weight.value.dtype));
    for (let n = 0; n < N; n++) {
      for (let gi = 0; gi < G; gi++) {
        gemm(true, false, Kg, OHW, Og, 1, w, gi * Og * Kg, Kg, dy.data, (n * O + gi * Og) * OHW, OHW, 0, dcol.data, gi * Kg * ldCol + n * OHW, ldCol);
      }
    }
    const dx = (this.dx = reuse(this.dx, [N, C, H, W], this.xDtype));
    dx.data.fill(0);
    col2im(g, dcol.data, dx.data, 0);
    return dx;
  }

  // Depthwise (one input channel per group, derivation.md §4.1) as direct loops: im2col + GEMM would
  // copy every input kh·kw times for (M × kh·kw)·(kh·kw × OH·OW) products too small to pay for it.
  // Output channel o = c·M + m reads input channel c only; for each tap (p, q), the output rows i and
  // columns j whose input position i·sh + p·dh − padTop, j·sw + q·dw − padLeft lies inside x:
  //   y[n,o,i,j]  = b[o] + Σ_{p,q} W[o,0,p,q] · x[n, c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft]
  //   dW[o,0,p,q] += Σ_{n,i,j} dy[n,o,i,j] · x[n, c, …]          dx[n, c, …] += Σ_{m,p,q} W[o,0,p,q] · dy[n,o,i,j]
  private depthwiseForward(g: ConvGeometry, x: NDArray): NDArray {
    const { N, C, H, W, OH, OW } = g;
    const O = this.outChannels;
    const M = O / C;
    const y = (this.y = reuse(this.y, [N, O, OH, OW], this.weight.value.dtype));
    const xd = x.data;
    const yd = y.data;
    const w = this.weight.value.data;
    const b = this.bias?.value.data;
    const taps = tapRanges(g);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        const c = Math.floor(o / M);
        const xBase = (n * C + c) * H * W;
        const yBase = (n * O + o) * OH * OW;
        yd.fill(b ? b[o] : 0, yBase, yBase + OH * OW);
        for (const t of taps) {
          const wv = w[o * g.kh * g.kw + t.tap];
          for (let i = t.iLo; i < t.iHi; i++) {
            const yRow = yBase + i * OW;
            let xi = xBase + (i * g.sh + t.rowOffset) * W + t.jLo * g.sw + t.colOffset;
            for (let j = t.jLo; j < t.jHi; j++, xi += g.sw) yd[yRow + j] += wv * xd[xi];
          }
        }
      }
    }
    this.xDepthwise = x;
    return y;
  }

  private depthwiseBackward(g: ConvGeometry, x: NDArray, dy: NDArray): NDArray {
    const { N, C, H, W, OH, OW } = g;
    const O = this.outChannels;
    const M = O / C;
    const dx = (this.dx = reuse(this.dx, [N, C, H, W], this.xDtype));
    const wantDx = !this.skipInputGrad;
    if (wantDx) dx.data.fill(0);
    const xd = x.data;
    const g_ = dy.data;
    const dxd = dx.data;
    const w = this.weight.value.data;
    const dW = this.weight.grad.data;
    const db = this.bias?.grad.data;
    const taps = tapRanges(g);
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        const c = Math.floor(o / M);
        const xBase = (n * C + c) * H * W;
        const yBase = (n * O + o) * OH * OW;
        if (db) {
          let s = 0;
          for (let k = yBase; k < yBase + OH * OW; k++) s += g_[k];
          db[o] += s;
        }
        for (const t of taps) {
          const widx = o * g.kh * g.kw + t.tap;
          const wv = w[widx];
          let dw = 0;
          for (let i = t.iLo; i < t.iHi; i++) {
            const yRow = yBase + i * OW;
            let xi = xBase + (i * g.sh + t.rowOffset) * W + t.jLo * g.sw + t.colOffset;
            for (let j = t.jLo; j < t.jHi; j++, xi += g.sw) {
              dw += g_[yRow + j] * xd[xi];
              if (wantDx) dxd[xi] += wv * g_[yRow + j];
            }
          }
          dW[widx] += dw;
        }
      }
    }
    return dx;
  }

  config(): LayerConfig {
    return {
      type: this.type,
      ...(this.channelsIn !== null ? { inChannels: this.channelsIn } : {}),
      outChannels: this.outChannels,
      ...(this.groupCount !== 1 ? { groups: this.groupCount } : {}),
      kernelSize: compact(this.kernelSize),
      stride: compact(this.stride),
      padding: typeof this.padding === "object" ? [this.padding[0], this.padding[1]] : this.padding,
      dilation: compact(this.dilation),
      bias: this.useBias,
      init: this.init,
    };
  }
}

/** Per kernel tap (p, q): the output rows/columns [iLo, iHi) × [jLo, jHi) whose input lies inside x, and its offsets. */
interface TapRange {
  tap: number; // p·kw + q
  iLo: number;
  iHi: number;
  jLo: number;
  jHi: number;
  rowOffset: number; // p·dh − padTop
  colOffset: number; // q·dw − padLeft
}

function tapRanges(g: ConvGeometry): TapRange[] {
  const out: TapRange[] = [];
  // first output index whose input index o·s + off ≥ 0, and the end of those with o·s + off < size
  const lo = (off: number, s: number) => Math.max(0, Math.ceil(-off / s));
  const hi = (off: number, s: number, size: number, outSize: number) => Math.min(outSize, Math.max(0, Math.ceil((size - off) / s)));
  for (let p = 0; p < g.kh; p++) {
    const rowOffset = p * g.dh - g.padTop;
    for (let q = 0; q < g.kw; q++) {
      const colOffset = q * g.dw - g.padLeft;
      const r = { tap: p * g.kw + q, iLo: lo(rowOffset, g.sh), iHi: hi(rowOffset, g.sh, g.H, g.OH), jLo: lo(colOffset, g.sw), jHi: hi(colOffset, g.sw, g.W, g.OW), rowOffset, colOffset };
      if (r.iLo < r.iHi && r.jLo < r.jHi) out.push(r);
    }
  }
  return out;
}
