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
  Layer, ShapeError, makeParam, positiveInt, type BackwardOptions, type ForwardOptions, type LayerConfig, type Param,
} from "./layer.ts";

export interface DenseOptions {
  inFeatures: number;
  outFeatures: number;
  /** Add a bias b (default true). The article's 4→1 layer has none. */
  bias?: boolean;
  /** Weight initialiser (default glorot_uniform, as Keras); biases start at 0. */
  init?: InitName;
  dtype?: DType;
  /** Draw the initial weights from this generator (default: RandomState(0)). */
  rng?: RandomState;
}

export class Dense extends Layer {
  readonly type = "Dense";
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly useBias: boolean;
  readonly init: InitName;
  readonly weight: Param;
  readonly bias: Param | null;
  private saved: DenseContext | null = null; // what the last forward saved for backward (its input)

  constructor(opts: DenseOptions) {
    super();
    this.inFeatures = positiveInt("Dense", "inFeatures", opts.inFeatures);
    this.outFeatures = positiveInt("Dense", "outFeatures", opts.outFeatures);
    this.useBias = opts.bias ?? true;
    this.init = checkInit("Dense", opts.init ?? "glorot_uniform");
    const dtype = opts.dtype ?? "float32";
    this.weight = makeParam("weight", [this.inFeatures, this.outFeatures], dtype);
    this.bias = this.useBias ? makeParam("bias", [this.outFeatures], dtype) : null;
    this.initialize(opts.rng ?? new RandomState(0));
  }

  override initialize(rng: RandomState): void {
    initialize(this.weight.value, this.init, this.inFeatures, this.outFeatures, rng);
    this.bias?.value.data.fill(0);
  }

  override params(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
  }

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 1 || inputShape[0] !== this.inFeatures) {
      // The batch size is unknown here: print it as N (a NaN placeholder would print as "(NaN, 2704)").
      throw new ShapeError(`${this.describe()}: expected input of shape (N, ${this.inFeatures}), got (N, ${inputShape.join(", ")})`);
    }
    return [this.outFeatures];
  }

  forward(x: NDArray, _opts: ForwardOptions = {}): NDArray {
    this.expectInput(x, [null, this.inFeatures], ["N", "F"]);
    this.saved = kernels.denseForward(x, this.weight.value, this.bias?.value ?? null, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.1): dW += xᵀ·dy, db += Σ_n dy, dx = dy·Wᵀ.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    const ctx = this.saved!;
    const needDx = opts.needDx ?? true;
    return kernels.denseBackward(ctx, this.weight.value, dy, this.weight.grad, this.bias?.grad ?? null, needDx);
  }

  config(): LayerConfig {
    return { type: this.type, inFeatures: this.inFeatures, outFeatures: this.outFeatures, bias: this.useBias, init: this.init };
  }
}
