// Dense (fully connected) layer: y = x·W + b, with W stored (inFeatures, outFeatures) as in the
// article (layer_2 = layer_1_act_vec · w2) and in Keras/TF.js.
//
// float32 with the "wasm" backend (src/kernels/backend.ts) runs forward and backward as single calls into
// the WebAssembly SIMD kernels (src/kernels/wasm/conv.as: denseForward/denseBackward).

import type { NDArray, DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { gemm } from "../kernels/gemm.ts";
import { useWasm } from "../kernels/backend.ts";
import { WasmDense } from "../kernels/wasm.ts";
import { initialize, checkInit, type InitName } from "./init.ts";
import { Layer, ShapeError, makeParam, positiveInt, reuse, type ForwardOptions, type LayerConfig, type Param } from "./layer.ts";

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
  private x: NDArray | null = null; // cached input: ∂y/∂W needs it
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private wasm: WasmDense | null = null;
  private forwardOnWasm = false; // backward takes the path its forward took

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
    const N = x.shape[0];
    const F = this.inFeatures;
    const O = this.outFeatures;
    const y = (this.y = reuse(this.y, [N, O], this.weight.value.dtype));
    this.x = x;
    this.forwardOnWasm = useWasm(x.data, this.weight.value.data);
    if (this.forwardOnWasm) {
      (this.wasm ??= new WasmDense()).forward(N, F, O, x.data, this.weight.value.data, this.bias?.value.data ?? null, y.data);
      return y;
    }
    // y[n,o] = b[o] + Σ_f x[n,f] · W[f,o]
    if (this.bias) for (let n = 0; n < N; n++) y.data.set(this.bias.value.data, n * O);
    gemm(false, false, N, O, F, 1, x.data, 0, F, this.weight.value.data, 0, O, this.bias ? 1 : 0, y.data, 0, O);
    return y;
  }

  // Backward (derivation.md §2.1, Dense):
  //   ∂L/∂W = xᵀ · dy            (F×N · N×O)      accumulated: dW += xᵀ·dy
  //   ∂L/∂b = Σ_n dy[n, :]                        accumulated: db += Σ_n dy
  //   ∂L/∂x = dy · Wᵀ            (N×O · O×F)
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const N = x.shape[0];
    const F = this.inFeatures;
    const O = this.outFeatures;
    if (this.forwardOnWasm && this.wasm !== null) {
      const dx = (this.dx = reuse(this.dx, [N, F], x.dtype));
      this.wasm.backward(N, F, O, x.data, this.weight.value.data, dy.data, this.weight.grad.data, this.bias?.grad.data ?? null, dx.data);
      return dx;
    }
    gemm(true, false, F, O, N, 1, x.data, 0, F, dy.data, 0, O, 1, this.weight.grad.data, 0, O);
    if (this.bias) {
      const db = this.bias.grad.data;
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) db[o] += dy.data[n * O + o];
    }
    const dx = (this.dx = reuse(this.dx, [N, F], x.dtype));
    gemm(false, true, N, F, O, 1, dy.data, 0, O, this.weight.value.data, 0, O, 0, dx.data, 0, F);
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type, inFeatures: this.inFeatures, outFeatures: this.outFeatures, bias: this.useBias, init: this.init };
  }
}
