// Dropout (inverted): in training each element survives with probability q = 1 − rate and survivors are
// scaled by 1/q, so E[y] = x and inference needs no rescaling — there the layer is the identity.
//
//     training:   m_i ~ Bernoulli(q),   y_i = m_i · x_i / q
//     inference:  y_i = x_i
//
// The mask comes from the layer's own RandomState (seeded by the `seed` option, default 0, and reseeded
// from the model's generator by initialize), one nextDouble() per element: element i survives when
// u_i ≥ rate, which has probability 1 − rate for u_i uniform on [0, 1). Training runs are therefore
// reproducible. rate = 0 draws nothing and keeps everything.
//
// Gradient checks re-run forward many times and need the same mask every time: set `freeze = true`
// and forward reuses the last mask (drawing one only if none of the right size exists yet).

import type { NDArray } from "../nd/ndarray.ts";
import { RandomState, type RandomStateInput, type RandomStateState } from "../nd/random.ts";
import { expectOptions, Layer, reuse, type ForwardOptions, type LayerConfig } from "./layer.ts";

export interface DropoutOptions {
  /** Probability of dropping an element, in [0, 1). */
  rate: number;
  /** Seed of the layer's own mask generator (default 0); initialize(rng) reseeds it from the model. */
  seed?: number;
}

/**
 * Inverted dropout: in training zeroes each input with probability `rate` and scales the rest by 1/(1 − rate), from its
 * own seeded generator; the identity at inference.
 */
export class Dropout extends Layer {
  readonly type = "Dropout";
  readonly rate: number;
  readonly seed: number;
  /** When true, forward reuses the last mask instead of drawing a new one (for gradcheck). */
  freeze = false;
  private rng: RandomState;
  private keep = new Uint8Array(0); // the mask m: 1 = survives, 0 = dropped (reused across batches)
  private hasMask = false;
  private trainingPass = false; // mode of the last forward: backward must match it
  private x: NDArray | null = null;
  private y: NDArray | null = null;
  private dx: NDArray | null = null;

  constructor(opts: DropoutOptions) {
    super();
    expectOptions("Dropout", opts, "{rate, seed?}");
    const { rate } = opts;
    if (typeof rate !== "number" || !(rate >= 0 && rate < 1)) {
      throw new RangeError(`Dropout: rate must be a number in [0, 1), got ${String(rate)}`);
    }
    const seed = opts.seed ?? 0;
    if (typeof seed !== "number" || !Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
      throw new RangeError(`Dropout: seed must be an integer in [0, 2^32), got ${String(seed)}`);
    }
    this.rate = rate;
    this.seed = seed;
    this.rng = new RandomState(seed);
  }

  /**
   * Reseed the mask generator from the model's generator — one draw, rng.randint(0, 2**32) as in NumPy —
   * so the model's seed controls dropout. Any mask kept for `freeze` is discarded.
   */
  override initialize(rng: RandomState): void {
    this.rng = new RandomState(rng.randint(0, 2 ** 32));
    this.hasMask = false;
  }

  /** The mask generator's current state: a checkpoint saves it so a resumed run draws the same masks. */
  getRngState(): RandomStateState {
    return this.rng.getState();
  }

  /** Restore a state from getRngState (e.g. when loading a checkpoint). Any mask kept for `freeze` is discarded. */
  setRngState(state: RandomStateInput): void {
    this.rng.setState(state);
    this.hasMask = false;
  }

  /** The last mask drawn (1 = kept), or null before the first training forward. Valid until the next draw. */
  get mask(): Uint8Array | null {
    return this.hasMask ? this.keep : null;
  }

  outputShape(inputShape: readonly number[]): number[] {
    return inputShape.slice();
  }

  forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    if (x.ndim < 1) this.shapeError("(N, ...)", x.shape);
    const training = opts.training ?? false;
    const y = (this.y = reuse(this.y, x.shape, x.dtype));
    const xd = x.data;
    const yd = y.data;
    this.x = x;
    this.trainingPass = training;
    if (!training) {
      yd.set(xd); // inference: identity (copied, so the output is this layer's buffer)
      return y;
    }
    const n = xd.length;
    if (!(this.freeze && this.hasMask && this.keep.length === n)) {
      if (this.keep.length !== n) this.keep = new Uint8Array(n);
      const keep = this.keep;
      if (this.rate === 0) keep.fill(1);
      else for (let i = 0; i < n; i++) keep[i] = this.rng.nextDouble() >= this.rate ? 1 : 0;
      this.hasMask = true;
    }
    // y_i = m_i · x_i / q
    const keep = this.keep;
    const scale = 1 / (1 - this.rate);
    for (let i = 0; i < n; i++) yd[i] = keep[i] === 1 ? xd[i] * scale : 0;
    return y;
  }

  // Backward: y_i = m_i · x_i / q  ⇒  ∂L/∂x_i = m_i · dy_i / q   (the same mask as forward);
  // after an inference forward y = x, so ∂L/∂x = dy.
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    const dyd = dy.data;
    if (!this.trainingPass) {
      dxd.set(dyd);
      return dx;
    }
    const keep = this.keep;
    const scale = 1 / (1 - this.rate);
    for (let i = 0; i < dyd.length; i++) dxd[i] = keep[i] === 1 ? dyd[i] * scale : 0;
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type, rate: this.rate, seed: this.seed };
  }
}
