// The gradient-check suite behind `handprop gradcheck` and test/gradcheck.test.ts: every layer, loss
// and a small full model, each over randomized configurations (kernel sizes, strides, paddings,
// dilations, channels, batch sizes) drawn from a seeded RandomState. All checks run in float64.

import { NDArray } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { Conv2D, type Conv2DOptions } from "./conv.ts";
import { Dense } from "./dense.ts";
import { Flatten } from "./flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "./pool.ts";
import { Dropout } from "./dropout.ts";
import { BatchNorm1D, BatchNorm2D } from "./batchnorm.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from "./activations.ts";
import { BinaryCrossEntropy, MSE, SoftmaxCrossEntropy, type Loss, type Target } from "./losses.ts";
import { gradcheckLoss } from "./gradcheck.ts";
import { Sequential } from "./sequential.ts";
import { gradcheck, type GradcheckResult } from "./gradcheck.ts";
import type { ForwardOptions, Layer, Param } from "./layer.ts";
import type { Differentiable } from "./gradcheck.ts";
import { DepthwiseConv2D, SeparableConv2D } from "./depthwise.ts";
import { Conv2DTranspose } from "./transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "./upsample.ts";
import { GroupNorm, LayerNorm } from "./norm.ts";
import { ELU, GELU, SiLU } from "./activations.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "./reshape.ts";
import { Add, Concatenate, Multiply } from "./merge.ts";
import { Input, Model } from "./graph.ts";
import { registeredLayerChecks } from "./registry.ts";

export interface SuiteCheck {
  /** Layer, loss or model type, e.g. "Conv2D". */
  name: string;
  /** One line per configuration, e.g. "k=3x2 s=2 p=same d=1 N=2 C=3→2". */
  config: string;
  result: GradcheckResult;
}

export interface SuiteSummary {
  name: string;
  configs: number;
  maxRelError: number;
  skippedKinks: number;
  ok: boolean;
  /** Some configuration's backward wrote into its dy (GradcheckResult.dyWritten). */
  dyWritten: boolean;
}

export interface SuiteOptions {
  seed?: number;
  /** Randomized configurations per layer type (default 6). */
  configsPerLayer?: number;
  tolerance?: number;
}

const int = (rng: RandomState, lo: number, hi: number): number => lo + Math.floor(rng.nextDouble() * (hi - lo + 1));
const pick = <T>(rng: RandomState, xs: readonly T[]): T => xs[Math.floor(rng.nextDouble() * xs.length)];

function randn(rng: RandomState, shape: number[]): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) x.data[i] = rng.standardNormal();
  return x;
}

/** Inputs kept at least 0.05 away from 0, where ReLU-like kinks sit. */
function awayFromZero(rng: RandomState, shape: number[]): NDArray {
  const x = randn(rng, shape);
  for (let i = 0; i < x.size; i++) x.data[i] = Math.sign(x.data[i] || 1) * (0.05 + Math.abs(x.data[i]));
  return x;
}

/** Distinct values at least 0.01 apart (a shuffled ramp), so a ±h step never changes a max-pool argmax. */
function distinct(rng: RandomState, shape: number[]): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  const perm = rng.permutation(x.size);
  for (let i = 0; i < x.size; i++) x.data[i] = (perm[i] - x.size / 2) * 0.05;
  return x;
}

function fmtPad(p: Conv2DOptions["padding"]): string {
  return Array.isArray(p) ? `[${p.join(",")}]` : String(p);
}

/** Run every check; `onResult` sees each as it finishes (for progress output). */
export function runGradcheckSuite(opts: SuiteOptions = {}, onResult?: (c: SuiteCheck) => void): SuiteCheck[] {
  const rng = new RandomState(opts.seed ?? 0);
  const n = opts.configsPerLayer ?? 6;
  const tolerance = opts.tolerance ?? 1e-6;
  const out: SuiteCheck[] = [];
  const record = (name: string, config: string, result: GradcheckResult) => {
    const c = { name, config, result: { ...result, name } };
    out.push(c);
    onResult?.(c);
  };
  const layerCheck = (name: string, config: string, layer: Layer, x: NDArray, training = true) => {
    record(name, config, gradcheck(layer, x, { seed: int(rng, 0, 1e6), tolerance, training }));
  };

  for (let i = 0; i < n; i++) {
    const kh = int(rng, 1, 4);
    const kw = int(rng, 1, 4);
    const stride = int(rng, 1, 3);
    const dilation = int(rng, 1, 2);
    const padding = pick<Conv2DOptions["padding"]>(rng, [0, 1, 2, [1, 0], "same", "valid"]);
    const N = int(rng, 1, 3);
    const C = int(rng, 1, 3);
    const O = int(rng, 1, 3);
    const H = dilation * (kh - 1) + 1 + int(rng, 0, 4);
    const W = dilation * (kw - 1) + 1 + int(rng, 0, 4);
    const bias = rng.nextDouble() < 0.7;
    const layer = new Conv2D({
      inChannels: C,
      outChannels: O,
      kernelSize: [kh, kw],
      stride,
      padding,
      dilation,
      bias,
      rng,
      dtype: "float64",
    });
    layerCheck(
      "Conv2D",
      `k=${kh}x${kw} s=${stride} p=${fmtPad(padding)} d=${dilation} N=${N} C=${C}→${O} ${H}x${W}${bias ? "" : " nobias"}`,
      layer,
      randn(rng, [N, C, H, W]),
    );
  }
  for (let i = 0; i < n; i++) {
    const k = int(rng, 1, 3);
    const stride = int(rng, 1, 3);
    const padding = int(rng, 0, Math.floor(k / 2));
    const N = int(rng, 1, 3);
    const C = int(rng, 1, 3);
    const H = k + int(rng, 0, 4);
    const W = k + int(rng, 0, 4);
    const cfg = `k=${k} s=${stride} p=${padding} N=${N} C=${C} ${H}x${W}`;
    layerCheck("MaxPool2D", cfg, new MaxPool2D({ kernelSize: k, stride, padding }), distinct(rng, [N, C, H, W]));
    layerCheck("AvgPool2D", cfg, new AvgPool2D({ kernelSize: k, stride, padding }), randn(rng, [N, C, H, W]));
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const N = int(rng, 1, 3);
    const C = int(rng, 1, 3);
    const H = int(rng, 1, 5);
    const W = int(rng, 1, 5);
    layerCheck("GlobalAvgPool2D", `N=${N} C=${C} ${H}x${W}`, new GlobalAvgPool2D(), randn(rng, [N, C, H, W]));
    layerCheck("Flatten", `N=${N} C=${C} ${H}x${W}`, new Flatten(), randn(rng, [N, C, H, W]));
  }
  for (let i = 0; i < n; i++) {
    const N = int(rng, 1, 4);
    const F = int(rng, 1, 6);
    const O = int(rng, 1, 5);
    const bias = rng.nextDouble() < 0.7;
    layerCheck(
      "Dense",
      `N=${N} ${F}→${O}${bias ? "" : " nobias"}`,
      new Dense({ inFeatures: F, outFeatures: O, bias, rng, dtype: "float64" }),
      randn(rng, [N, F]),
    );
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const N = int(rng, 1, 3);
    const shape = [N, int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 4)];
    const rate = pick(rng, [0.1, 0.3, 0.5]);
    const drop = new Dropout({ rate, seed: int(rng, 0, 1e6) });
    const x = randn(rng, shape);
    drop.forward(x, { training: true });
    drop.freeze = true; // the check re-runs forward: it must see the same mask
    layerCheck("Dropout", `rate=${rate} ${shape.join("x")}`, drop, x);
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    for (const training of [true, false]) {
      // N ≥ 3: with two samples a normalised feature is ±1 whatever the input, its gradient ~1e-5,
      // and finite differences drown in rounding.
      const N = int(rng, 3, 5);
      const C = int(rng, 1, 3);
      const H = int(rng, 1, 3);
      const W = int(rng, 1, 3);
      const bn2 = new BatchNorm2D({ numFeatures: C });
      const bn1 = new BatchNorm1D({ numFeatures: C });
      randomizeAffine(bn2, rng);
      randomizeAffine(bn1, rng);
      const x2 = randn(rng, [N, C, H, W]);
      const x1 = randn(rng, [N, C]);
      if (!training) {
        // give the running statistics values other than (0, 1)
        bn2.forward(randn(rng, [N, C, H, W]), { training: true });
        bn1.forward(randn(rng, [N, C]), { training: true });
      }
      const mode = training ? "train" : "eval";
      layerCheck("BatchNorm2D", `${mode} N=${N} C=${C} ${H}x${W}`, bn2, x2, training);
      layerCheck("BatchNorm1D", `${mode} N=${N} F=${C}`, bn1, x1, training);
    }
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const shape = [int(rng, 1, 3), int(rng, 1, 5)];
    const cfg = shape.join("x");
    layerCheck("ReLU", cfg, new ReLU(), awayFromZero(rng, shape));
    layerCheck("LeakyReLU", cfg, new LeakyReLU({ alpha: 0.1 }), awayFromZero(rng, shape));
    layerCheck("Tanh", cfg, new Tanh(), randn(rng, shape));
    layerCheck("Sigmoid", cfg, new Sigmoid(), randn(rng, shape));
    layerCheck("Softmax", cfg, new Softmax(), randn(rng, shape));
  }

  // Losses: gradient of the scalar loss with respect to the prediction.
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const N = int(rng, 1, 4);
    const K = int(rng, 2, 5);
    const logits = randn(rng, [N, K]);
    const labels = Array.from({ length: N }, () => int(rng, 0, K - 1));
    const onehot = new NDArray(new Float64Array(N * K), [N, K]);
    labels.forEach((l, r) => (onehot.data[r * K + l] = 1));
    const cfg = `N=${N} K=${K}`;
    const checkLoss = (name: string, what: string, loss: Loss, pred: NDArray, target: Target): void => {
      record(name, `${cfg} ${what}`, gradcheckLoss(loss, pred, target, { tolerance }));
    };
    checkLoss("SoftmaxCrossEntropy", "labels", new SoftmaxCrossEntropy(), logits, labels);
    checkLoss("SoftmaxCrossEntropy", "one-hot", new SoftmaxCrossEntropy(), logits, onehot);
    // Label smoothing and class weights (derivation.md §4.1–4.2); no draws, so the checks above keep their inputs.
    const weights = Array.from({ length: K }, (_, k) => 0.5 + k);
    const smoothed = () => new SoftmaxCrossEntropy({ labelSmoothing: 0.1, classWeights: weights });
    checkLoss("SoftmaxCrossEntropy", "labels ε=0.1 weighted", smoothed(), logits, labels);
    checkLoss("SoftmaxCrossEntropy", "one-hot ε=0.1 weighted", smoothed(), logits, onehot);
    const target = randn(rng, [N, K]);
    checkLoss("MSE", "half_sum", new MSE({ reduction: "half_sum" }), logits, target);
    checkLoss("MSE", "mean", new MSE({ reduction: "mean" }), logits, target);
    const probs = new NDArray(
      logits.data.map((v) => 1 / (1 + Math.exp(-v))),
      [N, K],
    );
    const bits = new NDArray(
      logits.data.map(() => (rng.nextDouble() < 0.5 ? 0 : 1)),
      [N, K],
    );
    checkLoss("BinaryCrossEntropy", "probabilities", new BinaryCrossEntropy(), probs, bits);
    checkLoss("BinaryCrossEntropy", "logits", new BinaryCrossEntropy({ fromLogits: true }), logits, bits);
  }

  // A small full model, end to end through every kind of layer.
  for (let i = 0; i < 2; i++) {
    const N = int(rng, 1, 3);
    const model = new Sequential(
      [
        // No bias before batch norm: BN subtracts the mean, so that bias's true gradient is exactly 0
        // and a finite difference of it is pure rounding noise.
        new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: "same", bias: false, rng }),
        new BatchNorm2D({ numFeatures: 2 }),
        new Tanh(),
        new AvgPool2D({ kernelSize: 2 }),
        new Conv2D({ inChannels: 2, outChannels: 3, kernelSize: 2, stride: 1, rng }),
        new Sigmoid(),
        new Flatten(),
        new Dense({ inFeatures: 3 * 2 * 2, outFeatures: 4, rng }),
        new Tanh(),
        new Dense({ inFeatures: 4, outFeatures: 3, rng }),
        new Softmax(),
      ],
      { inputShape: [1, 6, 6], seed: int(rng, 0, 1e6), dtype: "float64" },
    );
    // h = 1e-3 (a smooth model): at 1e-4 the rounding of these all-to-all differences reached 1.6e-6 (seed 40)
    record(
      "Sequential",
      `conv-bn-tanh-avgpool-conv-sigmoid-dense-tanh-dense-softmax N=${N}`,
      gradcheck(model, randn(rng, [N, 1, 6, 6]), { seed: i, tolerance, eps: 1e-3 }),
    );
  }
  moreLayerChecks(rng, n, tolerance, layerCheck, record);
  // User-defined layers registered with a gradcheck factory (registerLayer), like the built-in ones.
  for (const [type, make] of registeredLayerChecks()) {
    for (let i = 0; i < Math.max(2, n / 2); i++) {
      const { layer, input, config } = make(rng);
      layerCheck(type, config ?? input.shape.join("x"), layer, input);
    }
  }
  return out;
}

function randomizeAffine(layer: Layer, rng: RandomState): void {
  for (const p of layer.params()) {
    if (!p.trainable) continue;
    for (let i = 0; i < p.value.size; i++) p.value.data[i] = 0.5 + rng.nextDouble();
  }
}

/** One row per layer/loss/model type: the worst configuration decides. */
export function summarize(checks: SuiteCheck[]): SuiteSummary[] {
  const byName = new Map<string, SuiteSummary>();
  for (const c of checks) {
    const s = byName.get(c.name) ?? {
      name: c.name,
      configs: 0,
      maxRelError: 0,
      skippedKinks: 0,
      ok: true,
      dyWritten: false,
    };
    s.configs++;
    s.maxRelError = Math.max(s.maxRelError, c.result.maxRelError);
    s.skippedKinks += c.result.tensors.reduce((a, t) => a + t.skippedKinks, 0);
    s.ok &&= c.result.ok;
    s.dyWritten ||= c.result.dyWritten;
    byName.set(c.name, s);
  }
  return [...byName.values()];
}

/**
 * A merge layer as a one-input Differentiable for gradcheck: the single input (1, Σ sizes) is split
 * into the layer's inputs (views, so the check's perturbations reach them), and backward concatenates
 * the inputs' gradients back into one array.
 */
class MergeCheck implements Differentiable {
  readonly type: string;
  constructor(
    private readonly layer: Layer,
    private readonly shapes: readonly number[][],
  ) {
    this.type = layer.type;
  }
  private split(x: NDArray): NDArray[] {
    let off = 0;
    return this.shapes.map((s) => {
      const size = s.reduce((a, b) => a * b, 1);
      const part = new NDArray(x.data.subarray(off, off + size), s);
      off += size;
      return part;
    });
  }
  static input(rng: RandomState, shapes: readonly number[][]): NDArray {
    return randn(rng, [1, shapes.reduce((t, s) => t + s.reduce((a, b) => a * b, 1), 0)]);
  }
  forward(x: NDArray, opts?: ForwardOptions): NDArray {
    return this.layer.forwardInputs(this.split(x), opts);
  }
  backward(dy: NDArray): NDArray {
    const parts = this.layer.backwardInputs(dy);
    const total = parts.reduce((t, p) => t + p.size, 0);
    const dx = new NDArray(new Float64Array(total), [1, total]);
    let off = 0;
    for (const p of parts) {
      dx.data.set(p.data, off);
      off += p.size;
    }
    return dx;
  }
  params(): Param[] {
    return this.layer.params();
  }
  zeroGrad(): void {
    this.layer.zeroGrad();
  }
  setDtype(dtype: "float32" | "float64"): void {
    this.layer.setDtype(dtype);
  }
}

/** The layers of derivation.md §5: grouped/depthwise/separable/transposed convolutions, resampling, norms, activations, reshapes, merges. */
function moreLayerChecks(
  rng: RandomState,
  n: number,
  tolerance: number,
  layerCheck: (name: string, config: string, layer: Layer, x: NDArray, training?: boolean) => void,
  record: (name: string, config: string, result: GradcheckResult) => void,
): void {
  const dtype = "float64" as const;
  for (let i = 0; i < n; i++) {
    // grouped Conv2D, DepthwiseConv2D and SeparableConv2D, channels inferred from the input
    const k = int(rng, 1, 3);
    const stride = int(rng, 1, 2);
    const dilation = int(rng, 1, 2);
    const padding = pick<Conv2DOptions["padding"]>(rng, [0, 1, "same", "valid"]);
    const N = int(rng, 1, 2);
    const G = int(rng, 1, 3);
    const C = G * int(rng, 1, 2);
    const O = G * int(rng, 1, 2);
    const M = int(rng, 1, 2);
    const H = dilation * (k - 1) + 1 + int(rng, 0, 3);
    const W = dilation * (k - 1) + 1 + int(rng, 0, 3);
    const cfg = `k=${k} s=${stride} p=${fmtPad(padding)} d=${dilation} N=${N} ${H}x${W}`;
    const x = randn(rng, [N, C, H, W]);
    layerCheck(
      "Conv2D",
      `groups=${G} C=${C}→${O} ${cfg}`,
      new Conv2D({ outChannels: O, groups: G, kernelSize: k, stride, padding, dilation, rng, dtype }),
      x,
    );
    layerCheck(
      "DepthwiseConv2D",
      `C=${C} M=${M} ${cfg}`,
      new DepthwiseConv2D({
        depthMultiplier: M,
        kernelSize: k,
        stride,
        padding,
        dilation,
        rng,
        dtype,
        bias: rng.nextDouble() < 0.5,
      }),
      x,
    );
    layerCheck(
      "SeparableConv2D",
      `C=${C} M=${M}→${O} ${cfg}`,
      new SeparableConv2D({ outChannels: O, depthMultiplier: M, kernelSize: k, stride, padding, dilation, rng, dtype }),
      x,
    );
  }
  for (let i = 0; i < n; i++) {
    const kh = int(rng, 1, 3);
    const kw = int(rng, 1, 3);
    const stride = int(rng, 1, 3);
    const dilation = int(rng, 1, 2);
    const outputPadding = int(rng, 0, Math.max(stride, dilation) - 1);
    const padding = int(rng, 0, 1);
    const N = int(rng, 1, 2);
    const C = int(rng, 1, 3);
    const O = int(rng, 1, 3);
    // H ≥ 1 + 2p keeps the output, (H − 1)·s + d·(k − 1) + 1 + op − 2p, at least 1 row after cropping
    const H = int(rng, 1, 3) + 2 * padding;
    const W = int(rng, 1, 3) + 2 * padding;
    const layer = new Conv2DTranspose({
      outChannels: O,
      kernelSize: [kh, kw],
      stride,
      padding,
      outputPadding,
      dilation,
      rng,
      dtype,
      bias: rng.nextDouble() < 0.7,
    });
    layerCheck(
      "Conv2DTranspose",
      `k=${kh}x${kw} s=${stride} p=${padding} op=${outputPadding} d=${dilation} N=${N} C=${C}→${O} ${H}x${W}`,
      layer,
      randn(rng, [N, C, H, W]),
    );
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const shape = [int(rng, 1, 2), int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 4)];
    const size: [number, number] = [int(rng, 1, 3), int(rng, 1, 3)];
    const cfg = `size=${size.join("x")} ${shape.join("x")}`;
    layerCheck("UpSampling2D", `nearest ${cfg}`, new UpSampling2D({ size }), randn(rng, shape));
    layerCheck(
      "UpSampling2D",
      `bilinear ${cfg}`,
      new UpSampling2D({ size, interpolation: "bilinear" }),
      randn(rng, shape),
    );
    const pads: [[number, number], [number, number]] = [
      [int(rng, 0, 2), int(rng, 0, 2)],
      [int(rng, 0, 2), int(rng, 0, 2)],
    ];
    layerCheck(
      "ZeroPadding2D",
      `${JSON.stringify(pads)} ${shape.join("x")}`,
      new ZeroPadding2D({ padding: pads }),
      randn(rng, shape),
    );
    layerCheck("GlobalMaxPool2D", shape.join("x"), new GlobalMaxPool2D(), distinct(rng, shape));
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    // at least 3 values per normalisation group: with 1 or 2, x̂ is 0 or ±1 whatever x, and the true
    // input gradient is 0, which finite differences only reach as rounding noise (as for BatchNorm)
    const axes = int(rng, 1, 3);
    const shape = [int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 3), int(rng, 3, 4)];
    const affine = rng.nextDouble() < 0.8;
    const ln = new LayerNorm({ axes, affine });
    ln.outputShape(shape.slice(1));
    randomizeAffine(ln, rng);
    layerCheck("LayerNorm", `axes=${axes} ${shape.join("x")}${affine ? "" : " no-affine"}`, ln, randn(rng, shape));
    const groups = int(rng, 1, 3);
    const gshape = [int(rng, 1, 3), groups * int(rng, 1, 2), int(rng, 1, 3), int(rng, 3, 4)];
    const gn = new GroupNorm({ groups, affine });
    gn.outputShape(gshape.slice(1));
    randomizeAffine(gn, rng);
    layerCheck("GroupNorm", `G=${groups} ${gshape.join("x")}${affine ? "" : " no-affine"}`, gn, randn(rng, gshape));
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const shape = [int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 4)];
    const cfg = shape.join("x");
    layerCheck("GELU", `erf ${cfg}`, new GELU(), randn(rng, shape));
    layerCheck("GELU", `tanh ${cfg}`, new GELU({ approximate: "tanh" }), randn(rng, shape));
    layerCheck("SiLU", cfg, new SiLU(), randn(rng, shape));
    layerCheck("ELU", `alpha=1.3 ${cfg}`, new ELU({ alpha: 1.3 }), awayFromZero(rng, shape));
    const img = [int(rng, 1, 2), int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 3)];
    const axis = pick(rng, [1, 2, 3, -1, -2]);
    layerCheck("Softmax", `axis=${axis} ${img.join("x")}`, new Softmax({ axis }), randn(rng, img));
    layerCheck(
      "Reshape",
      `${img.join("x")} → (-1, ${img[3]})`,
      new Reshape({ targetShape: [-1, img[3]] }),
      randn(rng, img),
    );
    const dims = pick(rng, [
      [1, 2, 3],
      [2, 3, 1],
      [3, 1, 2],
      [3, 2, 1],
      [1, 3, 2],
    ]);
    layerCheck("Permute", `dims=${dims.join(",")} ${img.join("x")}`, new Permute({ dims }), randn(rng, img));
  }
  for (let i = 0; i < Math.max(2, n / 2); i++) {
    const N = int(rng, 1, 2);
    const sample = [int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 3)];
    const k = int(rng, 2, 3);
    const same = Array.from({ length: k }, () => [N, ...sample]);
    record(
      "Add",
      `${k} inputs ${same[0].join("x")}`,
      gradcheck(new MergeCheck(new Add(), same), MergeCheck.input(rng, same), { seed: int(rng, 0, 1e6), tolerance }),
    );
    record(
      "Multiply",
      `${k} inputs ${same[0].join("x")}`,
      gradcheck(new MergeCheck(new Multiply(), same), MergeCheck.input(rng, same), {
        seed: int(rng, 0, 1e6),
        tolerance,
      }),
    );
    const axis = pick(rng, [1, 2, 3, -1]);
    const a = axis < 0 ? 3 : axis;
    const parts = Array.from({ length: k }, () => {
      const s = [N, ...sample];
      s[a] = int(rng, 1, 3);
      return s;
    });
    record(
      "Concatenate",
      `axis=${axis} ${parts.map((p) => p.join("x")).join(" + ")}`,
      gradcheck(new MergeCheck(new Concatenate({ axis }), parts), MergeCheck.input(rng, parts), {
        seed: int(rng, 0, 1e6),
        tolerance,
      }),
    );
  }
  // A residual graph: a ResNet basic block (conv-BN-act-conv-BN + identity, act) whose input also feeds a
  // concatenated side branch, so one tensor has three readers and gradients must be summed (§5.7).
  // Smooth activations and average pooling: a ReLU or max kink crossed by one of many outputs can shift
  // a difference by ~1e-6 without looking like a kink (the plain layers' checks cover those).
  for (let i = 0; i < 2; i++) {
    const N = int(rng, 2, 3);
    const C = int(rng, 1, 3);
    const x = Input([C, 5, 5]);
    const conv = (o: number) => new Conv2D({ outChannels: o, kernelSize: 3, padding: "same", bias: false, rng });
    const f = new BatchNorm2D({}).apply(conv(C).apply(new SiLU().apply(new BatchNorm2D({}).apply(conv(C).apply(x)))));
    const block = new SiLU().apply(new Add().apply([x, f]));
    const side = new GELU().apply(new DepthwiseConv2D({ kernelSize: 3, padding: 1, rng }).apply(x));
    const out = new Dense({ outFeatures: 3, rng }).apply(
      new GlobalAvgPool2D().apply(new Concatenate().apply([block, side])),
    );
    const model = new Model({ inputs: x, outputs: out, seed: int(rng, 0, 1e6), dtype: "float64" });
    const training = i === 0;
    // h = 1e-3: every input reaches every output through batch norm, so a difference sums many terms and
    // its rounding (~ε·|L|/h) would reach 1e-6 of the smaller gradients at h = 1e-4; O(h⁴) stays ~1e-12.
    record(
      "ResidualGraph",
      `conv-bn-silu-conv-bn + identity, silu ‖ depthwise-gelu, concat, globalavg, dense N=${N} C=${C} ${training ? "train" : "eval"}`,
      gradcheck(model, randn(rng, [N, C, 5, 5]), { seed: i, tolerance, training, eps: 1e-3 }),
    );
  }
}
