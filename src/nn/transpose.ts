// Conv2DTranspose ("deconvolution", U-Net's upsampling convolution), derived as the adjoint of Conv2D
// (derivation.md §5.2).
//
// Take the Conv2D that maps images of the transposed layer's OUTPUT shape (Co, OH, OW) to images of its
// INPUT shape (Ci, H, W), with weight W viewed as (Ci, Co·kh·kw) — the same array, stored
// (inChannels, outChannels, kh, kw) as PyTorch's ConvTranspose2d. That convolution is the linear map
//   x_n = W · im2col(z)_n,         so its adjoint (transpose) is   z = col2im(Wᵀ · x_n).
// Conv2DTranspose's forward IS that adjoint (Conv2D's input-gradient formula, §2.2), plus a bias:
//   y_n = col2im(Wᵀ · x_n) + b          (Co·kh·kw × Ci) · (Ci × H·W), scattered into (Co, OH, OW)
// and since a linear map's adjoint's adjoint is the map itself, its backward reuses Conv2D's FORWARD and
// weight gradient, with col = im2col(dy):
//   dx_n = W · col_n                    (Ci × Co·kh·kw) · (Co·kh·kw × H·W)        (Conv2D's forward on dy)
//   dW  += Σ_n x_n · col_nᵀ             (Ci × H·W) · (H·W × Co·kh·kw)             (Conv2D's dW with x ↔ dy)
//   db[o] += Σ_{n,i,j} dy[n, o, i, j]
// Output size per axis: OH = (H − 1)·s − padTop − padBottom + d·(k − 1) + 1 + outputPadding, the
// largest-but-outputPadding input of the forward Conv2D that yields H; outputPadding (< max(s, d)) picks
// among the sizes a strided Conv2D maps to the same H, as in PyTorch.

import { formatShape, type DType, type NDArray } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { gemm } from "../kernels/gemm.ts";
import { col2im, convGeometry, im2col, type ConvGeometry } from "../kernels/im2col.ts";
import { compact } from "./conv.ts";
import { checkInit, initialize, type InitName } from "./init.ts";
import {
  expectOptions,
  ShapeError,
  makeParam,
  nonNegativeInt,
  pair,
  positiveInt,
  reuse,
  type BackwardOptions,
  type LayerConfig,
  booleanOption,
  dtypeOption,
  rngOption,
} from "./layer.ts";
import { WeightedLayer } from "./weighted.ts";

export interface Conv2DTransposeOptions {
  /** Ci; optional: taken from the input shape when left out. */
  inChannels?: number;
  outChannels: number;
  kernelSize: number | readonly [number, number];
  stride?: number | readonly [number, number];
  /** Rows/columns cropped from each side of the full output (PyTorch's padding), n or [ph, pw]; default 0. */
  padding?: number | readonly [number, number];
  /** Extra rows/columns added at the bottom/right, each < max(stride, dilation) (default 0). */
  outputPadding?: number | readonly [number, number];
  dilation?: number | readonly [number, number];
  bias?: boolean;
  /** Default he_normal with fanIn = outChannels·kh·kw (the forward Conv2D's fan-in, as PyTorch). */
  init?: InitName;
  dtype?: DType;
  rng?: RandomState;
}

/**
 * Transposed convolution: the adjoint of Conv2D (its input gradient as a layer), with stride, padding, output padding
 * and dilation.
 */
export class Conv2DTranspose extends WeightedLayer {
  readonly type = "Conv2DTranspose";
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  readonly outputPadding: [number, number];
  readonly dilation: [number, number];
  readonly useBias: boolean;
  readonly init: InitName;
  private channelsIn: number | null;
  protected readonly inputSizeOption = "inChannels";
  private dtype: DType;
  private readonly rng: RandomState;
  private geometry: ConvGeometry | null = null; // of the forward Conv2D: output (N, Co, OH, OW) ↔ input (N, Ci, H, W)
  private x: NDArray | null = null; // dW needs the input
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private col: NDArray | null = null;
  private dcol: NDArray | null = null;

  constructor(opts: Conv2DTransposeOptions) {
    super();
    const L = "Conv2DTranspose";
    expectOptions(L, opts, "{outChannels, kernelSize, ...}");
    this.channelsIn = opts.inChannels === undefined ? null : positiveInt(L, "inChannels", opts.inChannels);
    this.outChannels = positiveInt(L, "outChannels", opts.outChannels);
    this.kernelSize = pair(L, "kernelSize", opts.kernelSize, positiveInt);
    this.stride = pair(L, "stride", opts.stride ?? 1, positiveInt);
    this.padding = pair(L, "padding", opts.padding ?? 0, nonNegativeInt);
    this.outputPadding = pair(L, "outputPadding", opts.outputPadding ?? 0, nonNegativeInt);
    this.dilation = pair(L, "dilation", opts.dilation ?? 1, positiveInt);
    for (let a = 0; a < 2; a++) {
      const limit = Math.max(this.stride[a], this.dilation[a]);
      if (this.outputPadding[a] >= limit) {
        throw new RangeError(
          `${L}: outputPadding[${a}] (${this.outputPadding[a]}) must be smaller than max(stride, ` +
            `dilation) = ${limit} on the ${a === 0 ? "height" : "width"} axis`,
        );
      }
    }
    this.useBias = booleanOption(L, "bias", opts.bias, true);
    this.init = checkInit(L, opts.init ?? "he_normal");
    this.dtype = dtypeOption(L, opts.dtype);
    this.rng = rngOption(L, opts.rng);
    if (this.channelsIn !== null) this.resolveChannels(this.channelsIn);
  }

  get inChannels(): number {
    return this.channelsIn ?? this.unresolved("inChannels");
  }

  private resolveChannels(C: number): void {
    if (this.builtForChannels(C, this.channelsIn)) return;
    this.channelsIn = C;
    const [kh, kw] = this.kernelSize;
    this.weightParam = makeParam("weight", [C, this.outChannels, kh, kw], this.dtype);
    this.biasParam = this.useBias ? makeParam("bias", [this.outChannels], this.dtype) : null;
    this.initialize(this.rng);
  }

  override initialize(rng: RandomState): void {
    if (this.weightParam === null) return;
    const [kh, kw] = this.kernelSize;
    initialize(this.weightParam.value, this.init, this.outChannels * kh * kw, this.inChannels * kh * kw, rng);
    this.biasParam?.value.data.fill(0);
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  /** Output (OH, OW) for an H×W input (before checking it is positive). */
  private outputSize(H: number, W: number): [number, number] {
    const size = (n: number, a: number) =>
      (n - 1) * this.stride[a] -
      2 * this.padding[a] +
      this.dilation[a] * (this.kernelSize[a] - 1) +
      1 +
      this.outputPadding[a];
    return [size(H, 0), size(W, 1)];
  }

  outputShape(inputShape: readonly number[]): number[] {
    const known = this.channelsIn;
    if (
      inputShape.length !== 3 ||
      (known !== null && inputShape[0] !== known) ||
      !inputShape.every((d) => Number.isInteger(d) && d >= 1)
    ) {
      throw new ShapeError(
        `${this.describe()}: expected input samples of shape (${known ?? "C"}, H, W), got ` + formatShape(inputShape),
      );
    }
    this.resolveChannels(inputShape[0]);
    const [OH, OW] = this.outputSize(inputShape[1], inputShape[2]);
    if (OH < 1 || OW < 1) {
      throw new ShapeError(
        `${this.describe()}: padding ${this.padding.join("×")} crops the whole ` +
          `${OH + 2 * this.padding[0]}×${OW + 2 * this.padding[1]} output of a ${inputShape[1]}×${inputShape[2]} ` +
          `input`,
      );
    }
    return [this.outChannels, OH, OW];
  }

  private geometryFor(N: number, H: number, W: number): ConvGeometry {
    const [OH, OW] = this.outputShape([this.inChannels, H, W]).slice(1);
    const [ph, pw] = this.padding;
    // The forward Conv2D's geometry: it reads (N, Co, OH, OW) and its output grid is the H×W input.
    const padding = [ph, ph, pw, pw] as const;
    return {
      ...convGeometry(N, this.outChannels, OH, OW, this.kernelSize, this.stride, padding, this.dilation),
      OH: H,
      OW: W,
    };
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, this.channelsIn, null, null], ["N", "C", "H", "W"]);
    this.resolveChannels(x.shape[1]);
    const [N, Ci, H, W] = x.shape;
    const prev = this.geometry;
    const g =
      prev !== null && prev.N === N && prev.OH === H && prev.OW === W
        ? prev
        : (this.geometry = this.geometryFor(N, H, W));
    const Co = this.outChannels;
    const K = Co * g.kh * g.kw;
    const HW = H * W;
    const dtype = this.weight.value.dtype;
    // dcol_n = Wᵀ · x_n, then scatter-add into the output: Conv2D's dx formula (§2.2) applied to x.
    const dcol = (this.dcol = reuse(this.dcol, [K, N * HW], dtype));
    const w = this.weight.value.data;
    for (let n = 0; n < N; n++)
      gemm(true, false, K, HW, Ci, 1, w, 0, K, x.data, n * Ci * HW, HW, 0, dcol.data, n * HW, N * HW);
    const y = (this.y = reuse(this.y, [N, Co, g.H, g.W], dtype));
    y.data.fill(0);
    col2im(g, dcol.data, y.data, 0);
    if (this.bias) {
      const b = this.bias.value.data;
      const plane = g.H * g.W;
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < Co; o++) for (let k = (n * Co + o) * plane, e = k + plane; k < e; k++) y.data[k] += b[o];
      }
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §5.2): Conv2D's forward and weight gradient, on col = im2col(dy).
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.y);
    const g = this.geometry!;
    const x = this.x!;
    const { N, OH: H, OW: W } = g;
    const Ci = this.inChannels;
    const Co = this.outChannels;
    const K = Co * g.kh * g.kw;
    const HW = H * W;
    const col = (this.col = reuse(this.col, [K, N * HW], this.weight.value.dtype));
    im2col(g, dy.data, 0, col.data);
    const w = this.weight.value.data;
    const dW = this.weight.grad.data;
    for (let n = 0; n < N; n++)
      gemm(false, true, Ci, K, HW, 1, x.data, n * Ci * HW, HW, col.data, n * HW, N * HW, 1, dW, 0, K);
    if (this.bias) {
      const db = this.bias.grad.data;
      const plane = g.H * g.W;
      for (let n = 0; n < N; n++) {
        for (let o = 0; o < Co; o++) {
          let sum = 0;
          for (let k = (n * Co + o) * plane, e = k + plane; k < e; k++) sum += dy.data[k];
          db[o] += sum;
        }
      }
    }
    const dx = (this.dx = reuse(this.dx, [N, Ci, H, W], x.dtype));
    if (opts.needDx === false) return dx;
    for (let n = 0; n < N; n++)
      gemm(false, false, Ci, HW, K, 1, w, 0, K, col.data, n * HW, N * HW, 0, dx.data, n * Ci * HW, HW);
    return dx;
  }

  config(): LayerConfig {
    return this.weightedConfig(this.channelsIn, {
      outChannels: this.outChannels,
      kernelSize: compact(this.kernelSize),
      stride: compact(this.stride),
      padding: compact(this.padding),
      outputPadding: compact(this.outputPadding),
      dilation: compact(this.dilation),
    });
  }
}
