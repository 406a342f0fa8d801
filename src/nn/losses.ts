// Loss functions: a scalar L(pred, target) and its gradient ∂L/∂pred, the dy that starts backprop.
//
//   MSE, "half_sum":  L = ½ Σ_i (o_i − y_i)²            ∂L/∂o_i = o_i − y_i          (the article's cost)
//   MSE, "mean":      L = (1/M) Σ_i (o_i − y_i)²        ∂L/∂o_i = 2(o_i − y_i)/M     (M = all elements)
//   SoftmaxCrossEntropy on logits z (N, K), mean over the batch:
//                     L = (1/N) Σ_n [logΣ_k e^(z_nk) · Σ_k t_nk − Σ_k t_nk z_nk]
//                     ∂L/∂z_nk = (p_nk · Σ_j t_nj − t_nk) / N,   p = softmax(z)  (= (p − t)/N for one-hot t)
//     with label smoothing ε and class weights w (derivation.md §4.1–4.2): t → q = (1 − ε)t + ε·m/K and the
//                     mean → Σ_n s_n ℓ_n / Σ_n s_n;   ∂L/∂z_nk = s_n (p_nk · m_n − q_nk) / Σ_j s_j
//   BinaryCrossEntropy, mean over all M elements:
//     probabilities:  L = −(1/M) Σ [t log p + (1 − t) log(1 − p)],  p clamped to [ε, 1 − ε], ε = 1e-7
//                     ∂L/∂p = (p − t) / (p(1 − p)) / M inside the clamp, 0 where p was clamped
//     logits:         L = (1/M) Σ [max(z, 0) − z·t + log(1 + e^(−|z|))]
//                     ∂L/∂z = (σ(z) − t) / M
//
// forward caches what backward needs; backward returns ∂L/∂pred in a buffer reused from batch to
// batch (pred's shape and dtype), valid until this loss's next forward/backward.
// Sums run in float64 whatever pred's dtype.

import { labelsOf } from "./batches.ts";
import type { TypedConfig } from "./config.ts";
import { argmax, argmaxRowsOf, softmaxRows } from "../nd/rows.ts";
import { NDArray, allocate, formatShape } from "../nd/ndarray.ts";
import { ShapeError, oneOf, reuse } from "./layer.ts";
import { reuseDims } from "../kernels/buffers.ts";
import { sigmoid } from "./activations.ts";

/** Targets: an NDArray (values or one-hot/probability rows) or integer class labels. */
export type Target = NDArray | Int32Array | readonly number[];

export type LossConfig = TypedConfig;

/** The base of the losses: `forward(pred, target)` gives the loss, `backward()` its gradient with respect to pred. */
export abstract class Loss {
  abstract readonly type: string;
  /** L(pred, target), a mean or sum over the batch as documented per loss. Caches what backward needs. */
  abstract forward(pred: NDArray, target: Target): number;
  /** ∂L/∂pred for the last forward, in a reused buffer of pred's shape and dtype. */
  abstract backward(): NDArray;
  /** Options that rebuild this loss. */
  abstract config(): LossConfig;
  /**
   * How many of the batch's predictions are correct, for losses of classifiers (training and
   * evaluation report it as accuracy); null for regression losses, which have no notion of it.
   */
  countCorrect(_pred: NDArray, _target: Target): number | null {
    return null;
  }

  toJSON(): LossConfig {
    return this.config();
  }

  protected notYet(): never {
    throw new Error(`${this.type}: backward called before forward`);
  }
}

function targetShape(t: Target): string {
  return t instanceof NDArray ? formatShape(t.shape) : `(${t.length},)`;
}

/** A float64 scratch array of length n, reused when it already has that length. */
function scratch(buf: Float64Array | null, n: number): Float64Array {
  return buf !== null && buf.length === n ? buf : new Float64Array(n);
}

/**
 * Elementwise targets for MSE/BCE: an NDArray of pred's exact shape, or (when `plainOk`) a plain
 * array with one value per sample for pred of shape (N,) or (N, 1).
 */
function elementTargets(where: string, pred: NDArray, target: Target, plainOk: boolean): ArrayLike<number> {
  if (target instanceof NDArray) {
    if (target.ndim === pred.ndim && target.shape.every((d, i) => d === pred.shape[i])) return target.data;
    const batch = target.shape[0] !== pred.shape[0] ? "batch size mismatch: " : "";
    throw new ShapeError(
      `${where}: ${batch}targets must have pred's shape: pred ${formatShape(pred.shape)}, targets ${formatShape(target.shape)}`,
    );
  }
  const perSample = pred.ndim === 1 || (pred.ndim === 2 && pred.shape[1] === 1);
  if (!plainOk) {
    throw new TypeError(
      `${where}: targets must be an NDArray of pred's shape ${formatShape(pred.shape)}, got a plain array of length ${target.length}`,
    );
  }
  if (!perSample) {
    throw new ShapeError(
      `${where}: a plain-array target needs one value per sample (pred (N,) or (N, 1)); pred is ${formatShape(pred.shape)}: pass an NDArray of that shape`,
    );
  }
  if (target.length !== pred.shape[0]) {
    throw new ShapeError(
      `${where}: batch size mismatch: pred ${formatShape(pred.shape)}, targets ${targetShape(target)}`,
    );
  }
  return target;
}

// ---------------------------------------------------------------------------------------------
// MSE

export type MSEReduction = "half_sum" | "mean";

export interface MSEOptions {
  /** "mean" (default): mean of (o − y)² over all elements. "half_sum": ½ Σ (o − y)², the article's cost. */
  reduction?: MSEReduction;
}

/**
 * Mean squared error between predictions and an NDArray of targets of the same shape: ½·Σ(o − y)² (`half_sum`, the
 * article's cost) or the mean.
 */
export class MSE extends Loss {
  readonly type = "MSE";
  readonly reduction: MSEReduction;
  private diff: Float64Array | null = null; // o − y: all backward needs
  private pred: NDArray | null = null;
  private grad: NDArray | null = null;

  constructor(opts: MSEOptions = {}) {
    super();
    this.reduction = oneOf("MSE", "reduction", opts.reduction ?? "mean", ["half_sum", "mean"]);
  }

  forward(pred: NDArray, target: Target): number {
    const y = elementTargets("MSE", pred, target, false);
    const o = pred.data;
    const diff = (this.diff = scratch(this.diff, o.length));
    let s = 0;
    for (let i = 0; i < o.length; i++) {
      const d = o[i] - y[i];
      diff[i] = d;
      s += d * d;
    }
    this.pred = pred;
    // Σ(o − y)² · 0.5 in the article's order (sum first, then halve), so its cost matches bit for bit.
    return this.reduction === "half_sum" ? s * 0.5 : s / o.length;
  }

  // Backward: half_sum  ∂L/∂o = o − y;   mean  ∂L/∂o = 2(o − y)/M
  backward(): NDArray {
    if (this.pred === null || this.diff === null) this.notYet();
    const dPred = (this.grad = reuse(this.grad, this.pred.shape, this.pred.dtype));
    const diff = this.diff;
    const g = dPred.data;
    if (this.reduction === "half_sum") {
      for (let i = 0; i < g.length; i++) g[i] = diff[i];
    } else {
      const scale = 2 / g.length;
      for (let i = 0; i < g.length; i++) g[i] = scale * diff[i];
    }
    return dPred;
  }

  config(): LossConfig {
    return { type: this.type, reduction: this.reduction };
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy

/** Validated integer labels (length N, each in [0, K)) or null for a one-hot/probability target. */
function labelsOrNull(
  where: string,
  target: Target,
  N: number,
  K: number,
  logitsShape: readonly number[],
): ArrayLike<number> | null {
  let labels: ArrayLike<number>;
  if (target instanceof NDArray) {
    if (target.ndim === 2) {
      if (target.shape[0] !== N)
        throw new ShapeError(
          `${where}: batch size mismatch: logits ${formatShape(logitsShape)}, targets ${formatShape(target.shape)}`,
        );
      if (target.shape[1] !== K) {
        throw new ShapeError(
          `${where}: one-hot/probability targets must have shape (${N}, ${K}) like the logits, got ${formatShape(target.shape)}`,
        );
      }
      return null;
    }
    if (target.ndim !== 1) {
      throw new ShapeError(
        `${where}: targets must be integer labels (N,) or one-hot rows (N, K); logits ${formatShape(logitsShape)}, targets ${formatShape(target.shape)}`,
      );
    }
    labels = target.data;
  } else {
    labels = target;
  }
  if (labels.length !== N)
    throw new ShapeError(
      `${where}: batch size mismatch: logits ${formatShape(logitsShape)}, targets ${targetShape(target)}`,
    );
  for (let n = 0; n < N; n++) {
    const c = labels[n];
    if (!Number.isInteger(c))
      throw new RangeError(`${where}: label of sample ${n} is ${c}, not an integer class index`);
    if (c < 0 || c >= K)
      throw new RangeError(`${where}: label of sample ${n} is ${c}, outside [0, ${K}) for ${K} classes`);
  }
  return labels;
}

function checkLogits(where: string, pred: NDArray): void {
  if (pred.ndim !== 2 || pred.shape[1] < 1)
    throw new ShapeError(`${where}: expected logits of shape (N, K), got ${formatShape(pred.shape)}`);
}

function expectLogits(where: string, pred: NDArray): [number, number] {
  checkLogits(where, pred);
  return [pred.shape[0], pred.shape[1]];
}

export interface SoftmaxCrossEntropyOptions {
  /**
   * ε in [0, 1): the target becomes q = (1 − ε)·t + ε·m/K (m = Σ_k t_k, 1 for labels), derivation.md §4.1.
   * Default 0.
   */
  labelSmoothing?: number;
  /**
   * One weight c_k ≥ 0 per class: the loss becomes the weighted mean Σ w_n ℓ_n / Σ w_n with
   * w_n = c_{label n} (Σ_k c_k t_nk for rows), derivation.md §4.2. Default: all 1 (the plain mean).
   */
  classWeights?: readonly number[];
}

/**
 * Softmax and cross-entropy on logits, fused; targets are integer labels or one-hot/probability rows, with optional
 * label smoothing and class weights (derivation.md §4).
 */
export class SoftmaxCrossEntropy extends Loss {
  readonly type = "SoftmaxCrossEntropy";
  readonly labelSmoothing: number;
  readonly classWeights: readonly number[] | null;
  private probs: NDArray | null = null; // softmax(z): backward's p, and probabilities()
  private lse: Float64Array | null = null;
  private labels: Int32Array | null = null; // a copy: the caller's target buffer may be refilled
  private targetRows: Float64Array | null = null; // copy of one-hot/probability rows
  private oneHot = false;
  private grad: NDArray | null = null;
  private sampleWeights: Float64Array | null = null; // w_n / Σ w (or 1/N): backward's per-sample scale

  constructor(opts: SoftmaxCrossEntropyOptions = {}) {
    super();
    const eps = opts.labelSmoothing ?? 0;
    if (typeof eps !== "number" || !(eps >= 0 && eps < 1)) {
      throw new RangeError(`SoftmaxCrossEntropy: labelSmoothing must be a number in [0, 1), got ${String(eps)}`);
    }
    this.labelSmoothing = eps;
    const w = opts.classWeights;
    if (w !== undefined) {
      if (!Array.isArray(w) || w.length === 0) {
        throw new TypeError(`SoftmaxCrossEntropy: classWeights must be a non-empty array of numbers, got ${String(w)}`);
      }
      w.forEach((c, k) => {
        if (typeof c !== "number" || !(c >= 0) || !Number.isFinite(c)) {
          throw new RangeError(`SoftmaxCrossEntropy: classWeights[${k}] must be a finite number ≥ 0, got ${c}`);
        }
      });
    }
    this.classWeights = w === undefined ? null : w.slice();
  }

  /** Label smoothing or class weights in use: the general path (§4.1–4.2) instead of the plain one. */
  private get general(): boolean {
    return this.labelSmoothing !== 0 || this.classWeights !== null;
  }

  /** Row-wise softmax of logits (N, K), max-subtracted; a new array of the logits' dtype. */
  static softmax(logits: NDArray): NDArray {
    const [N, K] = expectLogits("SoftmaxCrossEntropy.softmax", logits);
    const out = new NDArray(allocate(logits.dtype, N * K), [N, K]);
    softmaxRows(logits.data, N, K, out.data, null);
    return out;
  }

  forward(pred: NDArray, target: Target): number {
    checkLogits(this.type, pred);
    const N = pred.shape[0]; // indexed, not destructured: a step allocates nothing
    const K = pred.shape[1];
    const labels = labelsOrNull(this.type, target, N, K, pred.shape);
    const p = (this.probs = reuseDims(this.probs, pred.dtype, N, K));
    const lse = (this.lse = scratch(this.lse, N));
    const z = pred.data;
    softmaxRows(z, N, K, p.data, lse);
    if (this.general) return this.forwardGeneral(z, target, labels, N, K);
    let total = 0;
    if (labels !== null) {
      // −log softmax(z)[c] = log Σ_k e^(z_k) − z_c
      const copy = (this.labels = this.labels?.length === N ? this.labels : new Int32Array(N));
      for (let n = 0; n < N; n++) {
        copy[n] = labels[n];
        total += lse[n] - z[n * K + labels[n]];
      }
      this.oneHot = false;
    } else {
      // −Σ_k t_k log softmax(z)_k = Σ_k t_k (log Σ_j e^(z_j) − z_k)
      const t = (target as NDArray).data;
      const rows = (this.targetRows = scratch(this.targetRows, N * K));
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          const tk = t[n * K + k];
          rows[n * K + k] = tk;
          if (tk !== 0) total += tk * (lse[n] - z[n * K + k]);
        }
      }
      this.oneHot = true;
    }
    return total / N;
  }

  // Backward: ∂L/∂z_nk = (p_nk − [k = c_n]) / N for labels;
  //           ∂L/∂z_nk = (p_nk · Σ_j t_nj − t_nk) / N for rows t (= (p − t)/N when rows sum to 1).
  backward(): NDArray {
    if (this.probs === null) this.notYet();
    const N = this.probs.shape[0];
    const K = this.probs.shape[1];
    const dz = (this.grad = reuseDims(this.grad, this.probs.dtype, N, K));
    const p = this.probs.data;
    const g = dz.data;
    if (this.general) {
      this.backwardGeneral(p, g, N, K);
    } else if (!this.oneHot) {
      const labels = this.labels!;
      for (let i = 0; i < g.length; i++) g[i] = p[i] / N;
      for (let n = 0; n < N; n++) g[n * K + labels[n]] = (p[n * K + labels[n]] - 1) / N;
    } else {
      const t = this.targetRows!;
      for (let n = 0; n < N; n++) {
        let mass = 0;
        for (let k = 0; k < K; k++) mass += t[n * K + k];
        for (let k = 0; k < K; k++) g[n * K + k] = (p[n * K + k] * mass - t[n * K + k]) / N;
      }
    }
    return dz;
  }

  // Label smoothing and class weights (§4.1–4.2): per sample n, with m_n = Σ_k t_nk (1 for a label),
  //     q_nk = (1 − ε)·t_nk + ε·m_n/K,   ℓ_n = Σ_k q_nk (lse_n − z_nk),   L = Σ_n w_n ℓ_n / Σ_n w_n.
  // For a label c: ℓ_n = lse_n − (1 − ε)·z_nc − (ε/K)·Σ_k z_nk. All weights 0: L = 0.
  private forwardGeneral(
    z: ArrayLike<number>,
    target: Target,
    labels: ArrayLike<number> | null,
    N: number,
    K: number,
  ): number {
    const c = this.classWeights;
    if (c !== null && c.length !== K) {
      const logits = formatShape([N, K]);
      throw new ShapeError(
        `${this.type}: classWeights has ${c.length} entries but the logits ${logits} have ${K} classes`,
      );
    }
    const eps = this.labelSmoothing;
    const lse = this.lse!;
    const w = (this.sampleWeights = scratch(this.sampleWeights, N));
    let total = 0;
    let weightSum = 0;
    if (labels !== null) {
      const copy = (this.labels = this.labels?.length === N ? this.labels : new Int32Array(N));
      for (let n = 0; n < N; n++) {
        const label = (copy[n] = labels[n]);
        let zSum = 0;
        for (let k = 0; k < K; k++) zSum += z[n * K + k];
        const loss = lse[n] - (1 - eps) * z[n * K + label] - (eps / K) * zSum;
        w[n] = c === null ? 1 : c[label];
        weightSum += w[n];
        total += w[n] * loss;
      }
      this.oneHot = false;
    } else {
      const t = (target as NDArray).data;
      const rows = (this.targetRows = scratch(this.targetRows, N * K));
      for (let n = 0; n < N; n++) {
        let mass = 0;
        let weight = 0;
        for (let k = 0; k < K; k++) {
          const tk = (rows[n * K + k] = t[n * K + k]);
          mass += tk;
          if (c !== null) weight += c[k] * tk;
        }
        let loss = 0;
        for (let k = 0; k < K; k++) loss += ((1 - eps) * rows[n * K + k] + (eps * mass) / K) * (lse[n] - z[n * K + k]);
        w[n] = c === null ? 1 : weight;
        weightSum += w[n];
        total += w[n] * loss;
      }
      this.oneHot = true;
    }
    // Backward needs w_n / Σ w: keep that instead of w_n.
    for (let n = 0; n < N; n++) w[n] = weightSum === 0 ? 0 : w[n] / weightSum;
    return weightSum === 0 ? 0 : total / weightSum;
  }

  // ∂L/∂z_nk = (w_n / Σ_j w_j)·(p_nk·m_n − q_nk)   (§4.1–4.2; = (p − q)/N without class weights)
  private backwardGeneral(p: ArrayLike<number>, g: { [i: number]: number }, N: number, K: number): void {
    const eps = this.labelSmoothing;
    const w = this.sampleWeights!;
    if (!this.oneHot) {
      const labels = this.labels!;
      for (let n = 0; n < N; n++) {
        for (let k = 0; k < K; k++) {
          const q = (k === labels[n] ? 1 - eps : 0) + eps / K;
          g[n * K + k] = w[n] * (p[n * K + k] - q);
        }
      }
    } else {
      const t = this.targetRows!;
      for (let n = 0; n < N; n++) {
        let mass = 0;
        for (let k = 0; k < K; k++) mass += t[n * K + k];
        for (let k = 0; k < K; k++) {
          const q = (1 - eps) * t[n * K + k] + (eps * mass) / K;
          g[n * K + k] = w[n] * (p[n * K + k] * mass - q);
        }
      }
    }
  }

  /** softmax(z) of the last forward (reused buffer, shape (N, K)). */
  probabilities(): NDArray {
    if (this.probs === null) throw new Error(`${this.type}: probabilities() called before forward`);
    return this.probs;
  }

  /** Rows whose largest logit is the target class (one-hot or probability targets: their argmax). */
  override countCorrect(pred: NDArray, target: Target): number {
    const N = pred.shape[0];
    const K = pred.shape[1];
    const labels = labelsOf(target, N, K);
    let c = 0;
    for (let n = 0; n < N; n++) if (argmax(pred.data, n * K, K) === labels[n]) c++;
    return c;
  }

  config(): LossConfig {
    const out: LossConfig = { type: this.type };
    if (this.labelSmoothing !== 0) out.labelSmoothing = this.labelSmoothing;
    if (this.classWeights !== null) out.classWeights = this.classWeights.slice();
    return out;
  }
}

/** Class predictions: argmax over each row of logits (N, K) (first index on ties). */
export function argmaxRows(logits: NDArray): Int32Array {
  const [N, K] = expectLogits("argmaxRows", logits);
  return argmaxRowsOf(logits.data, N, K);
}

/** Fraction of rows whose argmax matches the label (labels, or one-hot rows whose argmax is the label). */
export function accuracy(logits: NDArray, labels: Target): number {
  const [N, K] = expectLogits("accuracy", logits);
  const given = labelsOrNull("accuracy", labels, N, K, logits.shape);
  const truth = given ?? argmaxRows(labels as NDArray);
  const predicted = argmaxRows(logits);
  let correct = 0;
  for (let n = 0; n < N; n++) if (predicted[n] === truth[n]) correct++;
  return N === 0 ? 0 : correct / N;
}

// ---------------------------------------------------------------------------------------------
// Binary cross-entropy

/** Probabilities are clamped to [BCE_EPS, 1 − BCE_EPS] so log never sees 0 (Keras' epsilon). */
export const BCE_EPS = 1e-7;

export interface BinaryCrossEntropyOptions {
  /** pred holds logits z (σ applied inside, stably) instead of probabilities (default false). */
  fromLogits?: boolean;
}

/** Binary cross-entropy on probabilities, or on logits with `fromLogits` (numerically stable). */
export class BinaryCrossEntropy extends Loss {
  readonly type = "BinaryCrossEntropy";
  readonly fromLogits: boolean;
  private p: Float64Array | null = null; // σ(z) for logits, the unclamped p otherwise
  private t: Float64Array | null = null;
  private pred: NDArray | null = null;
  private grad: NDArray | null = null;

  constructor(opts: BinaryCrossEntropyOptions = {}) {
    super();
    const f = opts.fromLogits ?? false;
    if (typeof f !== "boolean")
      throw new TypeError(`BinaryCrossEntropy: fromLogits must be a boolean, got ${String(f)}`);
    this.fromLogits = f;
  }

  forward(pred: NDArray, target: Target): number {
    if (pred.ndim < 1)
      throw new ShapeError(`${this.type}: pred needs a batch axis, got shape ${formatShape(pred.shape)}`);
    const tgt = elementTargets(this.type, pred, target, true);
    const M = pred.size;
    const x = pred.data;
    const p = (this.p = scratch(this.p, M));
    const t = (this.t = scratch(this.t, M));
    let total = 0;
    for (let i = 0; i < M; i++) {
      const ti = tgt[i];
      if (!(ti >= 0 && ti <= 1))
        throw new RangeError(`${this.type}: targets must lie in [0, 1]; element ${i} is ${ti}`);
      t[i] = ti;
    }
    if (this.fromLogits) {
      for (let i = 0; i < M; i++) {
        const z = x[i];
        // max(z, 0) − z·t + log(1 + e^(−|z|)): equal to −[t log σ(z) + (1 − t) log(1 − σ(z))], and e^(−|z|) ≤ 1.
        total += Math.max(z, 0) - z * t[i] + Math.log1p(Math.exp(-Math.abs(z)));
        p[i] = sigmoid(z);
      }
    } else {
      for (let i = 0; i < M; i++) {
        const pi = x[i];
        if (Number.isNaN(pi)) throw new RangeError(`${this.type}: prediction ${i} is NaN`);
        p[i] = pi;
        const pc = Math.min(Math.max(pi, BCE_EPS), 1 - BCE_EPS);
        total -= t[i] * Math.log(pc) + (1 - t[i]) * Math.log(1 - pc);
      }
    }
    this.pred = pred;
    return total / M;
  }

  // Backward: logits         ∂L/∂z = (σ(z) − t) / M
  //           probabilities  ∂L/∂p = (p − t) / (p(1 − p)) / M for ε ≤ p ≤ 1 − ε, else 0 (the clamp is flat there)
  backward(): NDArray {
    if (this.pred === null || this.p === null || this.t === null) this.notYet();
    const dPred = (this.grad = reuse(this.grad, this.pred.shape, this.pred.dtype));
    const g = dPred.data;
    const p = this.p;
    const t = this.t;
    const M = g.length;
    if (this.fromLogits) {
      for (let i = 0; i < M; i++) g[i] = (p[i] - t[i]) / M;
    } else {
      for (let i = 0; i < M; i++) {
        const pi = p[i];
        g[i] = pi < BCE_EPS || pi > 1 - BCE_EPS ? 0 : (pi - t[i]) / (pi * (1 - pi)) / M;
      }
    }
    return dPred;
  }

  /** Predictions on the right side of the threshold (0 for logits, ½ for probabilities), as a count of samples. */
  override countCorrect(pred: NDArray, target: Target): number {
    const threshold = this.fromLogits ? 0 : 0.5;
    const t = target instanceof NDArray ? target.data : target;
    let c = 0;
    for (let i = 0; i < pred.size; i++) if ((pred.data[i] > threshold ? 1 : 0) === (t[i] > 0.5 ? 1 : 0)) c++;
    return (c / pred.size) * pred.shape[0];
  }

  config(): LossConfig {
    return { type: this.type, fromLogits: this.fromLogits };
  }
}

// ---------------------------------------------------------------------------------------------

/** Rebuild a loss from its config(). */
export function lossFromConfig(config: LossConfig): Loss {
  switch (config.type) {
    case "MSE":
      return new MSE({ reduction: config.reduction as MSEReduction | undefined });
    case "SoftmaxCrossEntropy":
      return new SoftmaxCrossEntropy({
        labelSmoothing: config.labelSmoothing as number | undefined,
        classWeights: config.classWeights as number[] | undefined,
      });
    case "BinaryCrossEntropy":
      return new BinaryCrossEntropy({ fromLogits: config.fromLogits as boolean | undefined });
    default:
      throw new RangeError(
        `unknown loss type ${JSON.stringify(config.type)} (expected MSE, SoftmaxCrossEntropy or BinaryCrossEntropy)`,
      );
  }
}
