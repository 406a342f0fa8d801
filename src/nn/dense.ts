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
import { Layer, makeParam, positiveInt, reuse, type ForwardOptions, type LayerConfig, type Param } from "./layer.ts";

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

export class Dense extends Layer {
  readonly type = "Dense";
  readonly outFeatures: number;
  readonly useBias: boolean;
  readonly init: InitName;
  private features: number | null; // F, null until given or inferred
  private weightParam: Param | null = null;
  private biasParam: Param | null = null;
  private dtype: DType;
  private readonly rng: RandomState;
  private x: NDArray | null = null; // cached input: ∂y/∂W needs it
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private wasm: WasmDense | null = null;
  private forwardOnWasm = false; // backward takes the path its forward took

  constructor(opts: DenseOptions) {
    super();
    if (typeof opts !== "object" || opts === null) throw new TypeError("Dense: expected an options object {outFeatures, inFeatures?, ...}");
    this.features = opts.inFeatures === undefined ? null : positiveInt("Dense", "inFeatures", opts.inFeatures);
    this.outFeatures = positiveInt("Dense", "outFeatures", opts.outFeatures);
    this.useBias = opts.bias ?? true;
    this.init = checkInit("Dense", opts.init ?? "glorot_uniform");
    this.dtype = opts.dtype ?? "float32";
    this.rng = opts.rng ?? new RandomState(0);
    if (this.features !== null) this.resolveFeatures(this.features);
  }

  /** Input features F (throws while they are still to be inferred from the input shape). */
  get inFeatures(): number {
    return this.features ?? this.unresolved("inFeatures");
  }
  /** W, (inFeatures, outFeatures). */
  get weight(): Param {
    return this.weightParam ?? this.unresolved("weight");
  }
  get bias(): Param | null {
    return this.useBias ? (this.biasParam ?? this.unresolved("bias")) : null;
  }

  override isBuilt(): boolean {
    return this.weightParam !== null;
  }

  private unresolved(what: string): never {
    throw new Error(`${this.describe()}: ${what} is not known yet: give inFeatures, or build the model with an inputShape (or run a forward pass) first`);
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

  override params(): Param[] {
    if (this.weightParam === null) return [];
    return this.biasParam ? [this.weightParam, this.biasParam] : [this.weightParam];
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  outputShape(inputShape: readonly number[]): number[] {
    const F = this.features;
    if (inputShape.length !== 1 || (F !== null && inputShape[0] !== F) || !(inputShape[0] >= 1)) {
      this.shapeError(`(N, ${F ?? "F"})`, [-1, ...inputShape].map((d) => (d === -1 ? NaN : d)));
    }
    this.resolveFeatures(inputShape[0]);
    return [this.outFeatures];
  }

  forward(x: NDArray, _opts: ForwardOptions = {}): NDArray {
    this.expectInput(x, [null, this.features], ["N", "F"]);
    this.resolveFeatures(x.shape[1]);
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
    return { type: this.type, ...(this.features !== null ? { inFeatures: this.features } : {}), outFeatures: this.outFeatures, bias: this.useBias, init: this.init };
  }
}
