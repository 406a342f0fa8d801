// Dense (fully connected) layer: y = x·W + b, with W stored (inFeatures, outFeatures) as in the
// article (layer_2 = layer_1_act_vec · w2) and in Keras/TF.js.
// The arithmetic is the kernels' denseForward / denseBackward (derivation.md §2.1): the reference in
// src/kernels/js.ts, float32 in src/kernels/wasm/conv.as.

import type { NDArray, DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { kernels } from "../kernels/backend.ts";
import type { DenseContext } from "../kernels/kernels.ts";
import { initialize, checkInit, type InitName } from "./init.ts";
import {
  expectOptions,
  ShapeError,
  makeParam,
  positiveInt,
  type BackwardOptions,
  type ForwardOptions,
  type LayerConfig,
  booleanOption,
  dtypeOption,
  rngOption,
} from "./layer.ts";
import { WeightedLayer } from "./weighted.ts";

const NF_NAMES: readonly string[] = ["N", "F"];

export interface DenseOptions {
  /** F; optional: when left out it is taken from the first input shape seen (Keras-style). */
  inFeatures?: number;
  outFeatures: number;
  /** Add a bias b (default true). The article's 4→1 layer has none. */
  bias?: boolean;
  /** Weight initialiser (default glorot_uniform, as Keras); biases start at 0. */
  init?: InitName;
  dtype?: DType;
  /** Draw the initial weights from this generator (default: RandomState(0)). */
  rng?: RandomState;
}

/**
 * Fully connected layer y = xW + b, W stored as (inFeatures, outFeatures); `inFeatures` may be left out when the input
 * shape gives it.
 */
export class Dense extends WeightedLayer {
  readonly type = "Dense";
  readonly outFeatures: number;
  readonly useBias: boolean;
  readonly init: InitName;
  private features: number | null; // F, null until given or inferred
  protected readonly inputSizeOption = "inFeatures";
  private dtype: DType;
  private readonly rng: RandomState;
  private saved: DenseContext | null = null; // what the last forward saved for backward (its input)
  private inputDims: (number | null)[] | null = null; // expectInput's (N, F), kept: a step allocates none

  constructor(opts: DenseOptions) {
    super();
    expectOptions("Dense", opts, "{outFeatures, inFeatures?, ...}");
    this.features = opts.inFeatures === undefined ? null : positiveInt("Dense", "inFeatures", opts.inFeatures);
    this.outFeatures = positiveInt("Dense", "outFeatures", opts.outFeatures);
    this.useBias = booleanOption("Dense", "bias", opts.bias, true);
    this.init = checkInit("Dense", opts.init ?? "glorot_uniform");
    this.dtype = dtypeOption("Dense", opts.dtype);
    this.rng = rngOption("Dense", opts.rng);
    if (this.features !== null) this.resolveFeatures(this.features);
  }

  /** Input features F (throws while they are still to be inferred from the input shape). */
  get inFeatures(): number {
    return this.features ?? this.unresolved("inFeatures");
  }

  // Fix F (given or inferred) and create the parameters from the layer's generator.
  private resolveFeatures(F: number): void {
    if (this.weightParam !== null) return;
    this.features = F;
    this.weightParam = makeParam("weight", [F, this.outFeatures], this.dtype);
    this.biasParam = this.useBias ? makeParam("bias", [this.outFeatures], this.dtype) : null;
    this.initialize(this.rng);
  }

  override initialize(rng: RandomState): void {
    if (this.weightParam === null) return; // drawn when F becomes known
    initialize(this.weightParam.value, this.init, this.inFeatures, this.outFeatures, rng);
    this.biasParam?.value.data.fill(0);
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  outputShape(inputShape: readonly number[]): number[] {
    const F = this.features;
    if (inputShape.length !== 1 || (F !== null && inputShape[0] !== F) || !(inputShape[0] >= 1)) {
      // The batch size is unknown here: print it as N (a NaN placeholder would print as "(NaN, 2704)").
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, ${F ?? "F"}), got (N, ${inputShape.join(", ")})`,
      );
    }
    this.resolveFeatures(inputShape[0]);
    return [this.outFeatures];
  }

  forward(x: NDArray, _opts: ForwardOptions = {}): NDArray {
    const dims = (this.inputDims ??= [null, this.features]);
    dims[1] = this.features;
    this.expectInput(x, dims, NF_NAMES);
    this.resolveFeatures(x.shape[1]);
    this.saved = kernels.denseForward(x, this.weight.value, this.bias?.value ?? null, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.1): dW += xᵀ·dy, db += Σ_n dy, dx = dy·Wᵀ.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    const { weight, bias } = this;
    return kernels.denseBackward(this.saved!, weight.value, dy, weight.grad, bias?.grad ?? null, opts.needDx ?? true);
  }

  config(): LayerConfig {
    return this.weightedConfig(this.features, { outFeatures: this.outFeatures });
  }
}
