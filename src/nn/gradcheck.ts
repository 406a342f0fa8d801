// Finite-difference gradient checks: the proof that each hand-written backward is right.
//
// For a layer (or a whole model) f with output y = f(x; θ) we check the scalar
//     L(x, θ) = Σ_j r_j · y_j          r fixed, drawn from N(0, 1)
// whose exact gradients are what backward returns when handed dy = r:
//     ∂L/∂x = backward(r),   ∂L/∂θ = the accumulated param grads.
// Numerically, each coordinate u (an input element or a parameter element) gets a central difference
// with Richardson extrapolation, which cancels the h² error term:
//     D(h) = (L(u+h) − L(u−h)) / 2h,    n = (4·D(h/2) − D(h)) / 3      (error O(h⁴))
// and the error reported per coordinate is  |a − n| / max(|a|, |n|, 1e-8).
// The differences are taken output by output, Σ_j r_j (y_j(u+h) − y_j(u−h)), so outputs that do not
// depend on u contribute exact zeros instead of rounding noise.
//
// Kinks (ReLU at 0, max-pool ties) make finite differences meaningless where a ±h step crosses one.
// Such coordinates are detected — D(h) and D(h/2) disagree far beyond the O(h²) a smooth function
// allows — and counted as skipped rather than hidden in the error.
//
// Everything runs in float64: the target's parameters are converted (setDtype) for the check.

import { NDArray, type DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import type { ForwardOptions, Param } from "./layer.ts";
import type { Loss, Target } from "./losses.ts";

/** Anything with a forward/backward pair and parameters: a Layer or a Sequential model. */
export interface Differentiable {
  forward(x: NDArray, opts?: ForwardOptions): NDArray;
  backward(dy: NDArray): NDArray;
  params(): Param[];
  zeroGrad(): void;
  setDtype(dtype: DType): void;
}

/** Options of gradcheck: the step, the seed, the tolerance. */
export interface GradcheckOptions {
  /** Step h (default 1e-4; Richardson makes the truncation error O(h⁴)). */
  eps?: number;
  /** Seed for the projection r (default 0). */
  seed?: number;
  /** Pass threshold on the max relative error (default 1e-6). */
  tolerance?: number;
  /** Check at most this many coordinates per tensor, chosen at random (default: all). */
  maxPerTensor?: number;
  /** Forward in training mode (default true; a Dropout check must reuse the same mask, see below). */
  training?: boolean;
  /** Name in the result (default: the target's type). */
  name?: string;
}

export interface TensorCheck {
  /** "input" or the parameter's name, prefixed with its layer index in a model. */
  tensor: string;
  maxRelError: number;
  checked: number;
  skippedKinks: number;
}

/**
 * One gradient check: the largest relative error between the backward pass and finite differences, and whether it
 * passed.
 */
export interface GradcheckResult {
  name: string;
  maxRelError: number;
  /** maxRelError within the tolerance, no kinks hit, and dy left as it was given. */
  ok: boolean;
  tensors: TensorCheck[];
  /**
   * True if backward wrote into the dy it was given, breaking the Layer contract (layer.ts): dy belongs to
   * the layer above, and inside a graph Model the same array may reach several layers (Add hands one
   * gradient to all its inputs), so a write would corrupt the others' gradients.
   */
  dyWritten: boolean;
}

/** |a − n| / max(|a|, |n|, 1e-8): the relative error of an analytic value a against a numeric one n. */
export function relError(a: number, n: number): number {
  return Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), 1e-8);
}

/**
 * The numeric half of every check: for each coordinate i in idx, Richardson-extrapolate the central
 * differences D(h) = central(i, h) and D(h/2) to n = (4·D(h/2) − D(h)) / 3, skip (and count) it as a
 * kink when D(h) and D(h/2) disagree far beyond the O(h²) a smooth function allows, and return the
 * max relative error against the analytic gradient grad[i].
 */
export function compareRichardson(
  tensor: string,
  idx: readonly number[],
  grad: ArrayLike<number>,
  central: (i: number, step: number) => number,
  h: number,
): TensorCheck {
  let maxRel = 0;
  let skipped = 0;
  for (const i of idx) {
    const d1 = central(i, h);
    const d2 = central(i, h / 2);
    if (Math.abs(d1 - d2) > 1e-4 * Math.max(Math.abs(d1), Math.abs(d2), 1e-2)) {
      skipped++;
      continue;
    }
    const n = (4 * d2 - d1) / 3;
    const e = relError(grad[i], n);
    if (e > maxRel || Number.isNaN(e)) maxRel = Number.isNaN(e) ? Infinity : e;
  }
  return { tensor, maxRelError: maxRel, checked: idx.length - skipped, skippedKinks: skipped };
}

/** A check that skipped more than 10% of its coordinates as kinks proves little: it fails. */
export function tooKinky(checks: readonly TensorCheck[]): boolean {
  return checks.some((t) => t.skippedKinks > 0.1 * (t.checked + t.skippedKinks));
}

/**
 * Check target's backward against finite differences at input x (converted to float64).
 * Layers whose forward draws random numbers in training mode (Dropout) must reuse their mask while
 * the check re-runs forward; they expose that with a `freeze` flag (see Dropout).
 */
export function gradcheck(target: Differentiable, input: NDArray, options: GradcheckOptions = {}): GradcheckResult {
  const h = options.eps ?? 1e-4;
  const tolerance = options.tolerance ?? 1e-6;
  const training = options.training ?? true;
  const rng = new RandomState(options.seed ?? 0);
  target.setDtype("float64");
  const x = input.astype("float64");
  const fwd = { training };

  const y0 = target.forward(x, fwd);
  const yShape = y0.shape.slice();
  const r = new Float64Array(y0.size);
  for (let i = 0; i < r.length; i++) r[i] = rng.standardNormal();

  // Analytic gradients: one backward with dy = r.
  target.zeroGrad();
  target.forward(x, fwd);
  const dy = new NDArray(r.slice(), yShape);
  const dx = target.backward(dy).data.slice();
  const dyWritten = dy.data.some((v, i) => !Object.is(v, r[i]));
  const params = target.params().filter((p) => p.trainable);
  const analytic = params.map((p) => p.grad.data.slice());

  // L(u ± h) differences for one coordinate `data[i]` of some tensor that forward reads.
  const loss = (): Float64Array => Float64Array.from(target.forward(x, fwd).data);
  const central = (data: Float64Array | Float32Array, i: number, step: number): number => {
    const orig = data[i];
    data[i] = orig + step;
    const yp = loss();
    data[i] = orig - step;
    const ym = loss();
    data[i] = orig;
    let s = 0;
    let c = 0; // Neumaier compensation: keeps the projection's own rounding below the signal
    for (let j = 0; j < yp.length; j++) {
      const d = yp[j] - ym[j];
      if (d === 0) continue;
      const term = r[j] * d;
      const t = s + term;
      c += Math.abs(s) >= Math.abs(term) ? s - t + term : term - t + s;
      s = t;
    }
    return (s + c) / (2 * step);
  };

  const checkTensor = (tensor: string, data: Float64Array | Float32Array, grad: ArrayLike<number>): TensorCheck => {
    let idx = Array.from({ length: data.length }, (_, i) => i);
    if (options.maxPerTensor !== undefined && idx.length > options.maxPerTensor) {
      rng.shuffle(idx);
      idx = idx.slice(0, options.maxPerTensor).sort((a, b) => a - b);
    }
    return compareRichardson(tensor, idx, grad, (i, step) => central(data, i, step), h);
  };

  const tensors: TensorCheck[] = [checkTensor("input", x.data, dx)];
  params.forEach((p, k) => tensors.push(checkTensor(p.name, p.value.data, analytic[k])));
  const maxRelError = Math.max(...tensors.map((t) => t.maxRelError));
  const name = options.name ?? (target as { type?: string }).type ?? "model";
  return { name, maxRelError, ok: maxRelError <= tolerance && !tooKinky(tensors) && !dyWritten, tensors, dyWritten };
}

// Losses: the same comparison, for a loss's ∂L/∂pred.

export interface GradcheckLossOptions {
  /** Step h (default 1e-4). */
  eps?: number;
  /** Pass threshold on the max relative error (default 1e-6). */
  tolerance?: number;
  /** Check at most this many coordinates of pred, evenly spaced (default: all). */
  maxPerTensor?: number;
}

/**
 * Check loss.backward() against finite differences of loss.forward at pred (converted to float64),
 * with the same scheme as gradcheck: central differences with Richardson extrapolation
 *     D(h) = (L(u+h) − L(u−h)) / 2h,   n = (4·D(h/2) − D(h)) / 3,
 * error |a − n| / max(|a|, |n|, 1e-8), and coordinates whose ±h step crosses a kink (BCE's clamp)
 * skipped and counted.
 * Conditioning: the differences are of the scalar L, whose rounding (≈ 1e-16·|L|) is divided by h,
 * so a component much smaller than 1e-16·|L|/h·1e6 — e.g. p/N for a class with softmax p ≈ 1e-6 —
 * cannot be resolved to 1e-6 relative. Check at inputs of moderate spread.
 */
export function gradcheckLoss(
  loss: Loss,
  pred: NDArray,
  target: Target,
  options: GradcheckLossOptions = {},
): GradcheckResult {
  const h = options.eps ?? 1e-4;
  const tolerance = options.tolerance ?? 1e-6;
  const x = pred.astype("float64");
  loss.forward(x, target);
  const analytic = loss.backward().data.slice();
  const data = x.data;

  const central = (i: number, step: number): number => {
    const orig = data[i];
    data[i] = orig + step;
    const lp = loss.forward(x, target);
    data[i] = orig - step;
    const lm = loss.forward(x, target);
    data[i] = orig;
    return (lp - lm) / (2 * step);
  };

  let idx = Array.from({ length: data.length }, (_, i) => i);
  if (options.maxPerTensor !== undefined && idx.length > options.maxPerTensor) {
    const every = idx.length / options.maxPerTensor;
    idx = Array.from({ length: options.maxPerTensor }, (_, j) => Math.floor(j * every));
  }
  const check = compareRichardson("pred", idx, analytic, central, h);
  return {
    name: loss.type,
    maxRelError: check.maxRelError,
    ok: check.maxRelError <= tolerance && !tooKinky([check]),
    tensors: [check],
    dyWritten: false, // a loss's backward takes no dy
  };
}
