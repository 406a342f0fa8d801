// Merge layers: Add, Multiply, Concatenate — layers with several inputs, used in functional Models
// (graph.ts) for residual connections, gating and feature concatenation (derivation.md §5.7).
//
// With inputs x_1 … x_k of one shape (Add, Multiply) or equal except along the axis (Concatenate):
//   Add          y = Σ_k x_k                 ∂L/∂x_k = dy
//   Multiply     y = Π_k x_k (elementwise)   ∂L/∂x_k = dy ⊙ Π_{j≠k} x_j   (the product of the others,
//                                            computed directly: no division, so zeros are fine)
//   Concatenate  y = [x_1, …, x_k] along axis  ∂L/∂x_k = the slice of dy where x_k was written
// Each returns its input gradients in its own buffers; a tensor feeding several layers has the
// gradients summed by the graph (§0's fan-out rule).

import { formatShape, type NDArray, type TypedArray } from "../nd/ndarray.ts";
import { isInternal, kernels } from "../kernels/backend.ts";
import { Layer, ShapeError, nonBatchAxis, reuse, type ForwardOptions, type LayerConfig } from "./layer.ts";

/** Base of the layers that take two or more inputs: forward/backward on one input are errors. */
export abstract class MergeLayer extends Layer {
  protected xs: NDArray[] = [];
  protected y: NDArray | null = null;
  protected dxs: (NDArray | null)[] = [];

  /** Output sample shape for k ≥ 2 input sample shapes; throws ShapeError naming the mismatching input. */
  protected abstract mergedShape(shapes: readonly (readonly number[])[]): number[];
  abstract override forwardInputs(xs: readonly NDArray[], opts?: ForwardOptions): NDArray;
  abstract override backwardInputs(dy: NDArray): NDArray[];

  override inferShape(inputShapes: readonly (readonly number[])[]): number[] {
    if (inputShapes.length < 2)
      throw new ShapeError(`${this.describe()}: takes two or more inputs, got ` + `${inputShapes.length}`);
    return this.mergedShape(inputShapes);
  }

  private oneInput(shape: readonly number[]): never {
    throw new ShapeError(
      `${this.describe()}: takes two or more inputs; apply it to a list of tensors in a ` +
        `functional Model (one input of shape ${formatShape(shape)} given)`,
    );
  }

  outputShape(inputShape: readonly number[]): number[] {
    return this.oneInput(inputShape);
  }

  forward(x: NDArray): NDArray {
    return this.oneInput(x.shape);
  }

  backward(_dy: NDArray): NDArray {
    throw new Error(`${this.describe()}: backward of a merge layer returns one gradient per input: use backwardInputs`);
  }

  /** Check the batch inputs against each other (via mergedShape on their sample shapes) and the batch size. */
  protected checkInputs(xs: readonly NDArray[]): void {
    if (xs.length < 2) throw new ShapeError(`${this.describe()}: takes two or more inputs, got ${xs.length}`);
    const N = xs[0].shape[0];
    xs.forEach((x, k) => {
      if (x.ndim < 1 || x.shape[0] !== N)
        throw new ShapeError(
          `${this.describe()}: input ${k} has shape ` +
            `${formatShape(x.shape)}, but input 0 has ${formatShape(xs[0].shape)} (batch sizes differ)`,
        );
    });
    this.mergedShape(xs.map((x) => x.shape.slice(1)));
  }

  protected gradBuffer(k: number, like: NDArray): NDArray {
    const b = kernels.outputBuffer(this.dxs[k] ?? null, like.shape, like.dtype);
    this.dxs[k] = b;
    return b;
  }
}

/** Shapes must all equal the first one. */
function sameShapes(layer: Layer, shapes: readonly (readonly number[])[]): number[] {
  const first = shapes[0];
  shapes.forEach((s, k) => {
    if (s.length !== first.length || s.some((d, i) => d !== first[i])) {
      throw new ShapeError(
        `${layer.describe()}: input ${k} has shape ${formatShape(s)} but input 0 has ` +
          `${formatShape(first)}; ${layer.type} needs equal shapes`,
      );
    }
  });
  return first.slice();
}

/** True when every input has exactly the first one's shape, batch included (checked without allocating). */
function allSameShape(xs: readonly NDArray[]): boolean {
  const first = xs[0].shape;
  for (let k = 1; k < xs.length; k++) {
    const s = xs[k].shape;
    if (s.length !== first.length) return false;
    for (let i = 0; i < s.length; i++) if (s[i] !== first[i]) return false;
  }
  return xs.length >= 2;
}

/** Add and Multiply: inputs of one shape, combined element by element; no options. */
abstract class ElementwiseMerge extends MergeLayer {
  protected mergedShape(shapes: readonly (readonly number[])[]): number[] {
    return sameShapes(this, shapes);
  }

  /** out[i] = a[i] ∘ b[i], the merge's operation (out may be a). */
  protected abstract combine(a: TypedArray, b: TypedArray, out: TypedArray): void;

  // y = ((x_1 ∘ x_2) ∘ x_3) ∘ …: the first two in one pass, then in place. The inputs are kept (Multiply's
  // backward reads them, Add's their shapes) in a reused array: steady-state training allocates nothing.
  forwardInputs(xs: readonly NDArray[]): NDArray {
    if (!allSameShape(xs)) this.checkInputs(xs); // throws, naming the input that differs
    const y = (this.y = kernels.outputBuffer(this.y, xs[0].shape, xs[0].dtype));
    this.combine(xs[0].data, xs[1].data, y.data);
    for (let k = 2; k < xs.length; k++) this.combine(y.data, xs[k].data, y.data);
    this.xs.length = xs.length;
    for (let k = 0; k < xs.length; k++) this.xs[k] = xs[k];
    return y;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}

/** Elementwise sum of its inputs (equal shapes): the residual connection of a graph Model. */
export class Add extends ElementwiseMerge {
  readonly type = "Add";
  private readonly dxsOut: NDArray[] = [];

  protected combine(a: TypedArray, b: TypedArray, out: TypedArray): void {
    kernels.add(a, b, out);
  }

  // Backward: ∂L/∂x_k = dy for every k. Inside a model's pass (dy internal to it: isInternal) every input's
  // gradient is dy itself — no layer writes into a gradient it is given (graph.ts accumulate), so sharing it
  // is safe and saves a copy per input of every residual block; called on its own, each input gets a copy in
  // its own buffer, so that nothing returned aliases the caller's dy. The returned array is reused by the
  // next backward.
  backwardInputs(dy: NDArray): NDArray[] {
    this.expectGrad(dy, this.y);
    const dxs = this.dxsOut;
    dxs.length = this.xs.length;
    const share = isInternal(dy);
    for (let k = 0; k < dxs.length; k++) {
      if (share) {
        dxs[k] = dy;
        continue;
      }
      dxs[k] = this.gradBuffer(k, this.xs[k]);
      dxs[k].data.set(dy.data);
    }
    return dxs;
  }
}

/** Elementwise product of its inputs (equal shapes). */
export class Multiply extends ElementwiseMerge {
  readonly type = "Multiply";

  protected combine(a: TypedArray, b: TypedArray, out: TypedArray): void {
    for (let i = 0; i < out.length; i++) out[i] = a[i] * b[i];
  }

  private readonly dxsOut: NDArray[] = [];

  // Backward: ∂L/∂x_k = dy ⊙ Π_{j≠k} x_j. The returned array is reused by the next backward (no allocation
  // per step).
  backwardInputs(dy: NDArray): NDArray[] {
    this.expectGrad(dy, this.y);
    const xs = this.xs;
    const dxs = this.dxsOut;
    dxs.length = xs.length;
    for (let k = 0; k < xs.length; k++) {
      const dx = (dxs[k] = this.gradBuffer(k, xs[k]));
      const d = dx.data;
      d.set(dy.data);
      for (let j = 0; j < xs.length; j++) {
        if (j === k) continue;
        const xd = xs[j].data;
        for (let i = 0; i < d.length; i++) d[i] *= xd[i];
      }
    }
    return dxs;
  }
}

export interface ConcatenateOptions {
  /** Axis of the full tensor (batch included) to join along; default 1 (an image's channels, a vector's features). Not 0. */
  axis?: number;
}

/** Concatenation of its inputs along `axis` (default: the channels). */
export class Concatenate extends MergeLayer {
  readonly type = "Concatenate";
  readonly axis: number;

  constructor(opts: ConcatenateOptions = {}) {
    super();
    this.axis = nonBatchAxis("Concatenate", opts.axis ?? 1, " (use 1 for channels/features, -1 for the last axis)");
  }

  /** The axis as an index into the sample shape (rank r). */
  private sampleAxis(rank: number, shape: readonly number[]): number {
    const a = this.axis < 0 ? this.axis + rank + 1 : this.axis;
    if (a < 1 || a > rank)
      throw new ShapeError(
        `${this.describe()}: axis ${this.axis} is out of range for samples ` + `of shape ${formatShape(shape)}`,
      );
    return a - 1;
  }

  protected mergedShape(shapes: readonly (readonly number[])[]): number[] {
    const first = shapes[0];
    const a = this.sampleAxis(first.length, first);
    let total = 0;
    shapes.forEach((s, k) => {
      if (s.length !== first.length || s.some((d, i) => i !== a && d !== first[i])) {
        throw new ShapeError(
          `${this.describe()}: input ${k} has shape ${formatShape(s)} but input 0 has ` +
            `${formatShape(first)}; they may differ only along axis ${this.axis}`,
        );
      }
      total += s[a];
    });
    const out = first.slice();
    out[a] = total;
    return out;
  }

  /** outer blocks × (len_k · inner) contiguous runs per input. */
  private runs(xs: readonly NDArray[]): { outer: number; lens: number[]; inner: number } {
    const a = this.sampleAxis(xs[0].ndim - 1, xs[0].shape.slice(1)) + 1;
    let outer = 1;
    let inner = 1;
    for (let i = 0; i < a; i++) outer *= xs[0].shape[i];
    for (let i = a + 1; i < xs[0].ndim; i++) inner *= xs[0].shape[i];
    return { outer, lens: xs.map((x) => x.shape[a] * inner), inner };
  }

  forwardInputs(xs: readonly NDArray[]): NDArray {
    this.checkInputs(xs);
    const shape = [xs[0].shape[0], ...this.mergedShape(xs.map((x) => x.shape.slice(1)))];
    const y = (this.y = reuse(this.y, shape, xs[0].dtype));
    const { outer, lens } = this.runs(xs);
    const row = lens.reduce((s, l) => s + l, 0);
    for (let o = 0; o < outer; o++) {
      let off = o * row;
      xs.forEach((x, k) => {
        y.data.set(x.data.subarray(o * lens[k], (o + 1) * lens[k]), off);
        off += lens[k];
      });
    }
    this.xs = xs.slice(); // for their shapes
    return y;
  }

  // Backward: ∂L/∂x_k = the slice of dy that forward filled from x_k.
  backwardInputs(dy: NDArray): NDArray[] {
    this.expectGrad(dy, this.y);
    const xs = this.xs;
    const { outer, lens } = this.runs(xs);
    const row = lens.reduce((s, l) => s + l, 0);
    const dxs = xs.map((x, k) => this.gradBuffer(k, x));
    for (let o = 0; o < outer; o++) {
      let off = o * row;
      dxs.forEach((dx, k) => {
        dx.data.set(dy.data.subarray(off, off + lens[k]), o * lens[k]);
        off += lens[k];
      });
    }
    return dxs;
  }

  config(): LayerConfig {
    return { type: this.type, axis: this.axis };
  }
}
