// Optimizers: turn the accumulated gradients into parameter updates, with PyTorch's update rules
// (torch.optim, foreach=False, maximize=False). Notation: w a parameter, g = ∂L/∂w, t the step count
// (1 on the first step), η the learning rate `lr`.
//
// step(params) updates each trainable param's value in place from its grad and leaves the grads alone
// (zeroGrad is the model's job). Per-parameter state ("slots": momentum buffers, Adam moments) is keyed
// by the param's position in the list passed to step, so always pass the same list in the same order
// (Sequential.ownParams()). Slots live in the param's dtype, as PyTorch keeps them, and stateDict()
// copies them into plain number arrays: float32 and float64 values both survive JSON exactly, so a
// saved run resumes bit for bit.

import type { TypedConfig } from "./config.ts";
import { allocate, dtypeOf, type DType, type TypedArray } from "../nd/ndarray.ts";
import type { Param } from "./layer.ts";
import { isResidentData, kernels, residentCopyOf } from "../kernels/backend.ts";

export type OptimizerConfig = TypedConfig;

/** JSON-able optimizer state: step count, current lr, and slots[name][paramIndex] ([] = not yet created). */
export interface OptimizerState {
  type: string;
  step: number;
  lr: number;
  slots: Record<string, number[][]>;
}

// --- option validation (thrown at construction, naming the optimizer and the option) ---

function finiteNumber(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new RangeError(`${where}: ${name} must be a finite number, got ${String(v)}`);
  return v;
}
function positive(where: string, name: string, v: unknown): number {
  const x = finiteNumber(where, name, v);
  if (x <= 0) throw new RangeError(`${where}: ${name} must be > 0, got ${x}`);
  return x;
}
function nonNegative(where: string, name: string, v: unknown): number {
  const x = finiteNumber(where, name, v);
  if (x < 0) throw new RangeError(`${where}: ${name} must be >= 0, got ${x}`);
  return x;
}
/** In [0, 1): a decay rate whose state must keep forgetting. */
function unitInterval(where: string, name: string, v: unknown): number {
  const x = finiteNumber(where, name, v);
  if (x < 0 || x >= 1) throw new RangeError(`${where}: ${name} must be in [0, 1), got ${x}`);
  return x;
}

/** The base of SGD, Adam, AdamW and RMSProp: `step(params)` updates each parameter from its accumulated gradient. */
export abstract class Optimizer {
  abstract readonly type: string;
  /** Number of step() calls so far (Adam's bias correction uses it). */
  stepCount = 0;
  private lrValue = 0;
  /** The update's scalars for the kernels (Kernels.adamUpdate / sgdUpdate): a Float64Array boxes none. */
  protected readonly scalars = new Float64Array(6);
  /** slots.get(name)[paramIndex]: per-parameter state, created on the param's first update. */
  private readonly slots = new Map<string, (TypedArray | null)[]>();

  protected constructor(
    lr: number,
    private readonly slotNames: readonly string[],
  ) {
    this.lrValue = positive(new.target.name, "lr", lr);
    for (const s of slotNames) this.slots.set(s, []);
  }

  /** The learning rate; schedules set it between epochs (0 is allowed there, e.g. a cosine's end). */
  get lr(): number {
    return this.lrValue;
  }
  set lr(v: number) {
    this.lrValue = nonNegative(this.type, "lr", v);
  }

  /** Update every trainable param from its grad (in place). Grads are left as they are. */
  step(params: readonly Param[]): void {
    this.stepCount++;
    for (let i = 0; i < params.length; i++) {
      const p = params[i];
      if (!p.trainable) continue;
      if (p.grad.size !== p.value.size) {
        throw new RangeError(
          `${this.type}: param ${i} (${p.name}) has ${p.value.size} values but ${p.grad.size} gradients`,
        );
      }
      this.update(p.value.data, p.grad.data, i, p.name);
    }
  }

  /** Apply the update rule to one parameter w with gradient g; `index` keys its slots. */
  protected abstract update(w: TypedArray, g: TypedArray, index: number, name: string): void;

  /** A slot buffer for param `index` (w's length and dtype), or null if it does not exist yet. */
  protected slot(name: string, index: number, w: TypedArray, paramName: string): TypedArray | null {
    const list = this.slots.get(name)!;
    let s = list[index] ?? null;
    if (s === null) return null;
    if (s.length !== w.length) {
      throw new RangeError(
        `${this.type}: state '${name}' of param ${index} has ${s.length} values but param ${index} (${paramName}) has ${w.length}: pass step() the same params, in the same order, as before`,
      );
    }
    if (dtypeOf(s) !== dtypeOf(w)) {
      s = convert(s, dtypeOf(w)); // after setDtype or loadStateDict: exact when values came from that dtype
      list[index] = s;
    }
    return (list[index] = beside(w, s));
  }

  /** Create a zeroed slot buffer for param `index`. */
  protected newSlot(name: string, index: number, w: TypedArray): TypedArray {
    const s = beside(w, allocate(dtypeOf(w), w.length));
    this.slots.get(name)![index] = s;
    return s;
  }

  /** Options that rebuild this optimizer (without its state). */
  abstract config(): OptimizerConfig;

  toJSON(): OptimizerConfig {
    return this.config();
  }

  /** A JSON-able copy of the state: resume with loadStateDict on an optimizer built from config(). */
  stateDict(): OptimizerState {
    const slots: Record<string, number[][]> = {};
    for (const [name, list] of this.slots) slots[name] = Array.from(list, (s) => (s ? Array.from(s) : []));
    return { type: this.type, step: this.stepCount, lr: this.lrValue, slots };
  }

  /** Restore a stateDict(). Slots come back as float64 and take the param's dtype at the next step. */
  loadStateDict(state: OptimizerState): void {
    if (state.type !== this.type) throw new TypeError(`${this.type}.loadStateDict: state was saved by ${state.type}`);
    if (!Number.isInteger(state.step) || state.step < 0)
      throw new RangeError(`${this.type}.loadStateDict: step must be a non-negative integer, got ${state.step}`);
    for (const name of Object.keys(state.slots)) {
      if (!this.slotNames.includes(name))
        throw new RangeError(
          `${this.type}.loadStateDict: unknown state slot '${name}' (expected ${this.slotNames.join(", ") || "none"})`,
        );
    }
    this.lr = state.lr;
    this.stepCount = state.step;
    for (const name of this.slotNames) {
      const saved = state.slots[name] ?? [];
      this.slots.set(
        name,
        saved.map((a) => (a.length > 0 ? Float64Array.from(a) : null)),
      );
    }
  }
}

/**
 * Slot s where the update reads w: in the kernels' memory when w is there (a parameter the trainer keeps
 * resident, backend.ts keepResident), so the update copies neither in nor out; else s as it is.
 */
function beside(w: TypedArray, s: TypedArray): TypedArray {
  return isResidentData(w) && !isResidentData(s) ? residentCopyOf(s) : s;
}

function convert(s: TypedArray, dtype: DType): TypedArray {
  const out = allocate(dtype, s.length);
  out.set(s);
  return out;
}

// ---------------------------------------------------------------------------------------------

export interface SGDOptions {
  lr: number;
  /** μ (default 0: plain gradient descent). */
  momentum?: number;
  nesterov?: boolean;
  /** L2 penalty λ added to the gradient: g = ∂L/∂w + λ·w (default 0). */
  weightDecay?: number;
  /** Fraction of the gradient not added to the momentum buffer (default 0). */
  dampening?: number;
}

/**
 * Stochastic gradient descent (torch.optim.SGD):
 *   g = ∂L/∂w + λ·w
 *   v = g                          on a param's first step (momentum ≠ 0)
 *   v = μ·v + (1 − dampening)·g    afterwards
 *   u = nesterov ? g + μ·v : v     (u = g when μ = 0)
 *   w = w − u·η
 * With μ = 0 and λ = 0 this is the article's w = w − grad·lr, evaluated as exactly that expression.
 */
export class SGD extends Optimizer {
  readonly type = "SGD";
  readonly momentum: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly dampening: number;

  constructor(opts: SGDOptions) {
    super(opts.lr, ["momentum"]);
    this.momentum = unitInterval("SGD", "momentum", opts.momentum ?? 0);
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = nonNegative("SGD", "weightDecay", opts.weightDecay ?? 0);
    this.dampening = finiteNumber("SGD", "dampening", opts.dampening ?? 0);
    if (this.dampening < 0 || this.dampening > 1)
      throw new RangeError(`SGD: dampening must be in [0, 1], got ${this.dampening}`);
    if (this.nesterov && (this.momentum === 0 || this.dampening !== 0)) {
      throw new RangeError(
        `SGD: nesterov needs momentum > 0 and dampening = 0 (got momentum ${this.momentum}, dampening ${this.dampening})`,
      );
    }
  }

  // The element loop is the kernels' sgdUpdate (reference: src/kernels/js.ts; float32 on the wasm threads).
  protected update(w: TypedArray, grad: TypedArray, index: number, name: string): void {
    const mu = this.momentum;
    let v = mu === 0 ? null : this.slot("momentum", index, w, name);
    const first = v === null;
    if (mu !== 0) v ??= this.newSlot("momentum", index, w);
    const h = this.scalars;
    h[0] = this.lr;
    h[1] = this.weightDecay;
    h[2] = mu;
    h[3] = 1 - this.dampening;
    h[4] = this.nesterov ? 1 : 0;
    h[5] = first ? 1 : 0;
    kernels.sgdUpdate(w, grad, v, h);
  }

  config(): OptimizerConfig {
    return {
      type: this.type,
      lr: this.lr,
      momentum: this.momentum,
      nesterov: this.nesterov,
      weightDecay: this.weightDecay,
      dampening: this.dampening,
    };
  }
}

// ---------------------------------------------------------------------------------------------

export interface AdamOptions {
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Adam: L2 penalty added to the gradient (default 0). AdamW: decoupled decay (default 0.01). */
  weightDecay?: number;
}

/**
 * Adam (torch.optim.Adam, amsgrad=False):
 *   g = ∂L/∂w + λ·w
 *   m = β₁·m + (1 − β₁)·g            v = β₂·v + (1 − β₂)·g²          (m = v = 0 before step 1)
 *   w = w − (η / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
 * so the first step moves each weight by η·g/(|g| + ε) ≈ η·sign(g).
 */
export class Adam extends Optimizer {
  readonly type: string = "Adam";
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;

  constructor(opts: AdamOptions = {}, defaultWeightDecay = 0) {
    super(opts.lr ?? 1e-3, ["m", "v"]);
    const where = new.target.name;
    this.beta1 = unitInterval(where, "beta1", opts.beta1 ?? 0.9);
    this.beta2 = unitInterval(where, "beta2", opts.beta2 ?? 0.999);
    this.eps = nonNegative(where, "eps", opts.eps ?? 1e-8);
    this.weightDecay = nonNegative(where, "weightDecay", opts.weightDecay ?? defaultWeightDecay);
  }

  /** The moment updates and the bias-corrected step, shared with AdamW (l2 = the coupled λ). */
  protected adamStep(w: TypedArray, grad: TypedArray, index: number, name: string, l2: number): void {
    const m = this.slot("m", index, w, name) ?? this.newSlot("m", index, w);
    const v = this.slot("v", index, w, name) ?? this.newSlot("v", index, w);
    const b1 = this.beta1;
    const b2 = this.beta2;
    const t = this.stepCount;
    const stepSize = this.lr / (1 - b1 ** t);
    const sqrtBc2 = Math.sqrt(1 - b2 ** t);
    // the element loop: the kernels' adamUpdate (reference: src/kernels/js.ts; float32 on the wasm threads)
    const h = this.scalars;
    h[0] = b1;
    h[1] = b2;
    h[2] = stepSize;
    h[3] = sqrtBc2;
    h[4] = this.eps;
    h[5] = l2;
    kernels.adamUpdate(w, grad, m, v, h);
  }

  protected update(w: TypedArray, grad: TypedArray, index: number, name: string): void {
    this.adamStep(w, grad, index, name, this.weightDecay);
  }

  config(): OptimizerConfig {
    return {
      type: this.type,
      lr: this.lr,
      beta1: this.beta1,
      beta2: this.beta2,
      eps: this.eps,
      weightDecay: this.weightDecay,
    };
  }
}

/**
 * AdamW (torch.optim.AdamW): decoupled weight decay, applied to w before the Adam step and never
 * seen by the moments:
 *   w = w · (1 − η·λ),   then Adam with g = ∂L/∂w.
 */
export class AdamW extends Adam {
  override readonly type: string = "AdamW";

  constructor(opts: AdamOptions = {}) {
    super(opts, 0.01);
  }

  protected override update(w: TypedArray, grad: TypedArray, index: number, name: string): void {
    const decay = 1 - this.lr * this.weightDecay;
    if (decay !== 1) for (let i = 0; i < w.length; i++) w[i] = w[i] * decay;
    this.adamStep(w, grad, index, name, 0);
  }
}

// ---------------------------------------------------------------------------------------------

export interface RMSPropOptions {
  lr?: number;
  /** Smoothing constant of the squared-gradient average (default 0.99). */
  alpha?: number;
  eps?: number;
  momentum?: number;
  weightDecay?: number;
}

/**
 * RMSProp (torch.optim.RMSprop, centered=False):
 *   g = ∂L/∂w + λ·w
 *   s = α·s + (1 − α)·g²                       (s = 0 before step 1)
 *   μ = 0:  w = w − η · g / (√s + ε)
 *   μ > 0:  b = μ·b + g / (√s + ε);  w = w − η·b   (b = 0 before step 1)
 */
export class RMSProp extends Optimizer {
  readonly type = "RMSProp";
  readonly alpha: number;
  readonly eps: number;
  readonly momentum: number;
  readonly weightDecay: number;

  constructor(opts: RMSPropOptions = {}) {
    super(opts.lr ?? 1e-2, ["square_avg", "momentum"]);
    this.alpha = unitInterval("RMSProp", "alpha", opts.alpha ?? 0.99);
    this.eps = nonNegative("RMSProp", "eps", opts.eps ?? 1e-8);
    this.momentum = unitInterval("RMSProp", "momentum", opts.momentum ?? 0);
    this.weightDecay = nonNegative("RMSProp", "weightDecay", opts.weightDecay ?? 0);
  }

  protected update(w: TypedArray, grad: TypedArray, index: number, name: string): void {
    const s = this.slot("square_avg", index, w, name) ?? this.newSlot("square_avg", index, w);
    const b = this.momentum > 0 ? (this.slot("momentum", index, w, name) ?? this.newSlot("momentum", index, w)) : null;
    const { alpha, eps, momentum: mu, weightDecay: wd, lr } = this;
    for (let i = 0; i < w.length; i++) {
      const g = wd === 0 ? grad[i] : grad[i] + wd * w[i];
      s[i] = alpha * s[i] + (1 - alpha) * g * g;
      const step = g / (Math.sqrt(s[i]) + eps);
      if (b === null) {
        w[i] = w[i] - lr * step;
      } else {
        b[i] = mu * b[i] + step;
        w[i] = w[i] - lr * b[i];
      }
    }
  }

  config(): OptimizerConfig {
    return {
      type: this.type,
      lr: this.lr,
      alpha: this.alpha,
      eps: this.eps,
      momentum: this.momentum,
      weightDecay: this.weightDecay,
    };
  }
}

// ---------------------------------------------------------------------------------------------

/** Rebuild an optimizer from its config() (state not included: see loadStateDict). */
export function optimizerFromConfig(config: OptimizerConfig): Optimizer {
  const c = config as OptimizerConfig & Record<string, number | boolean | undefined>;
  const num = (k: string): number | undefined => c[k] as number | undefined;
  switch (config.type) {
    case "SGD":
      return new SGD({
        lr: num("lr")!,
        momentum: num("momentum"),
        nesterov: c.nesterov as boolean | undefined,
        weightDecay: num("weightDecay"),
        dampening: num("dampening"),
      });
    case "Adam":
      return new Adam({
        lr: num("lr"),
        beta1: num("beta1"),
        beta2: num("beta2"),
        eps: num("eps"),
        weightDecay: num("weightDecay"),
      });
    case "AdamW":
      return new AdamW({
        lr: num("lr"),
        beta1: num("beta1"),
        beta2: num("beta2"),
        eps: num("eps"),
        weightDecay: num("weightDecay"),
      });
    case "RMSProp":
      return new RMSProp({
        lr: num("lr"),
        alpha: num("alpha"),
        eps: num("eps"),
        momentum: num("momentum"),
        weightDecay: num("weightDecay"),
      });
    default:
      throw new RangeError(
        `unknown optimizer type ${JSON.stringify(config.type)} (expected SGD, Adam, AdamW or RMSProp)`,
      );
  }
}
