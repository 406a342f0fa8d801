// Reshape, Permute (Keras semantics over the sample axes; the batch axis is never touched) and
// GlobalMaxPool2D (derivation.md §5.6).
//
// Reshape keeps every element's row-major position, so its Jacobian is the identity: dx = reshape(dy).
// Permute moves element x[n, i_1, …, i_r] to y[n, i_{p(1)}, …, i_{p(r)}] (Keras's 1-based dims p):
// a permutation matrix, whose transpose is the inverse permutation: dx = permute(dy, p⁻¹).
// GlobalMaxPool2D: y[n, c] = max_{h,w} x[n, c, h, w], dx = dy at the (first) argmax, 0 elsewhere.

import { NDArray, formatShape, shapeSize } from "../nd/ndarray.ts";
import { isInternal } from "../kernels/backend.ts";
import { InputShapedLayer, ShapeError, reuse, type LayerConfig } from "./layer.ts";

export interface ReshapeOptions {
  /** The new sample shape (batch axis excluded); one entry may be −1 (inferred). */
  targetShape: readonly number[];
}

/**
 * A layer whose output holds its input's elements in the same row-major order under another sample
 * shape (Reshape, Flatten). Each element keeps its flat position, so the Jacobian is the identity:
 * y = reshape(x) and ∂L/∂x = reshape(dy, x.shape). Each is a copy into the layer's buffer, so that no
 * array a caller holds aliases another — except inside a model's pass, where x (or dy) is internal: the
 * kernels made it for this layer alone, so y (or dx) shares its elements under the new shape instead of
 * copying them. In a CNN that keeps the pooled maps and their gradient where the kernels wrote them
 * (resident in linear memory on the wasm backend) instead of copying them out and back in.
 */
function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export abstract class RowMajorReshape extends InputShapedLayer {
  /** The fewest axes (batch included) an input must have, and how forward's error states the shape. */
  protected abstract readonly minRank: number;
  protected abstract readonly expectedShape: string;

  // y's buffers; each output shape is worked out only when the input's changes (a steady-state step allocates nothing)
  private copyBuffer: NDArray | null = null; // forward's y when x is the caller's: a copy
  private copyFor: readonly number[] = []; // the input shape copyBuffer was made for
  private view: NDArray | null = null; // forward's y sharing an internal x's elements
  private viewFor: readonly number[] = []; // the input shape view was made for
  private gradView: NDArray | null = null; // backward's dx sharing an internal dy's elements

  forward(x: NDArray): NDArray {
    if (x.ndim < this.minRank) this.shapeError(this.expectedShape, x.shape);
    let y: NDArray;
    if (isInternal(x)) {
      y = this.view!;
      if (this.view === null || y.data !== x.data || !sameShape(this.viewFor, x.shape)) {
        y = this.view = new NDArray(x.data, [x.shape[0], ...this.outputShape(x.shape.slice(1))]);
        this.viewFor = x.shape;
      }
    } else {
      y = this.copyBuffer!;
      if (this.copyBuffer === null || y.dtype !== x.dtype || !sameShape(this.copyFor, x.shape)) {
        y = this.copyBuffer = reuse(this.copyBuffer, [x.shape[0], ...this.outputShape(x.shape.slice(1))], x.dtype);
        this.copyFor = x.shape;
      }
      y.data.set(x.data);
    }
    this.x = x;
    this.y = y;
    return y;
  }

  backward(dy: NDArray): NDArray {
    if (!isInternal(dy)) {
      const dx = this.inputGrad(dy);
      dx.data.set(dy.data);
      return dx;
    }
    this.expectGrad(dy, this.y);
    const x = this.x!;
    let dx = this.gradView!;
    if (this.gradView === null || dx.data !== dy.data || !sameShape(dx.shape, x.shape))
      dx = this.gradView = new NDArray(dy.data, x.shape.slice());
    return dx;
  }
}

/** Reshape each sample (the batch axis stays) to `targetShape`, row-major. */
export class Reshape extends RowMajorReshape {
  readonly type = "Reshape";
  readonly targetShape: number[];
  protected readonly minRank = 1;
  protected readonly expectedShape = "(N, ...)";

  constructor(opts: ReshapeOptions) {
    super();
    const t: unknown = (opts as Partial<ReshapeOptions> | null)?.targetShape;
    if (
      !Array.isArray(t) ||
      t.length === 0 ||
      !t.every((d) => Number.isInteger(d) && (d >= 1 || d === -1)) ||
      t.filter((d) => d === -1).length > 1
    ) {
      throw new RangeError(
        `Reshape: targetShape must be a non-empty array of positive integers with at most one ` +
          `-1, got ${JSON.stringify(t)}`,
      );
    }
    this.targetShape = (t as number[]).slice();
  }

  outputShape(inputShape: readonly number[]): number[] {
    const size = shapeSize(inputShape);
    const known = this.targetShape.reduce((p, d) => (d === -1 ? p : p * d), 1);
    const out = this.targetShape.map((d) => (d === -1 ? size / known : d));
    if (!out.every((d) => Number.isInteger(d)) || shapeSize(out) !== size) {
      throw new ShapeError(
        `${this.describe()}: cannot reshape samples of shape ${formatShape(inputShape)} (${size} ` +
          `values) to ${formatShape(this.targetShape)}`,
      );
    }
    return out;
  }

  config(): LayerConfig {
    return { type: this.type, targetShape: this.targetShape.slice() };
  }
}

export interface PermuteOptions {
  /** A permutation of 1 … r over the r sample axes (Keras's 1-based convention): [2, 3, 1] turns CHW into HWC. */
  dims: readonly number[];
}

/** Permute the axes of each sample (the batch axis stays). */
export class Permute extends InputShapedLayer {
  readonly type = "Permute";
  readonly dims: number[];

  constructor(opts: PermuteOptions) {
    super();
    const d: unknown = (opts as Partial<PermuteOptions> | null)?.dims;
    const dims = Array.isArray(d) && d.every((v) => typeof v === "number") ? d : null;
    if (
      dims === null ||
      dims.length === 0 ||
      !dims
        .slice()
        .sort((a, b) => a - b)
        .every((v, i) => v === i + 1)
    ) {
      throw new RangeError(
        `Permute: dims must be a permutation of 1…r (the sample axes, 1-based), got ` + JSON.stringify(d),
      );
    }
    this.dims = dims.slice();
  }

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== this.dims.length) {
      throw new ShapeError(
        `${this.describe()}: dims ${JSON.stringify(this.dims)} permute ${this.dims.length} axes, ` +
          `but the samples have shape ${formatShape(inputShape)}`,
      );
    }
    return this.dims.map((a) => inputShape[a - 1]);
  }

  /** dst[n, j…] = src[n, i…] for the axis permutation `perm` (0-based over sample axes): out axis k = in axis perm[k]. */
  private static permute(
    src: NDArray,
    dst: NDArray,
    inShape: readonly number[],
    perm: readonly number[],
    toOutput: boolean,
  ): void {
    const r = inShape.length;
    const N = src.shape[0];
    const size = shapeSize(inShape);
    const inStrides = new Array<number>(r);
    for (let a = r - 1, s = 1; a >= 0; a--) {
      inStrides[a] = s;
      s *= inShape[a];
    }
    const outShape = perm.map((a) => inShape[a]);
    const stride = perm.map((a) => inStrides[a]); // input stride of each output axis
    const idx = new Array<number>(r).fill(0);
    for (let n = 0; n < N; n++) {
      const base = n * size;
      idx.fill(0);
      let inPos = 0;
      for (let o = 0; o < size; o++) {
        if (toOutput) dst.data[base + o] = src.data[base + inPos];
        else dst.data[base + inPos] = src.data[base + o];
        for (let k = r - 1; k >= 0; k--) {
          idx[k]++;
          inPos += stride[k];
          if (idx[k] < outShape[k]) break;
          inPos -= stride[k] * outShape[k];
          idx[k] = 0;
        }
      }
    }
  }

  forward(x: NDArray): NDArray {
    if (x.ndim < 1) this.shapeError("(N, ...)", x.shape);
    const sample = x.shape.slice(1);
    const shape = this.outputShape(sample);
    const y = (this.y = reuse(this.y, [x.shape[0], ...shape], x.dtype));
    Permute.permute(
      x,
      y,
      sample,
      this.dims.map((a) => a - 1),
      true,
    );
    this.x = x;
    return y;
  }

  // Backward: the inverse permutation, written as the same walk with source and destination swapped.
  backward(dy: NDArray): NDArray {
    const dx = this.inputGrad(dy);
    const x = this.x!;
    Permute.permute(
      dy,
      dx,
      x.shape.slice(1),
      this.dims.map((a) => a - 1),
      false,
    );
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type, dims: this.dims.slice() };
  }
}

/** The maximum of each channel over H and W: (N, C, H, W) → (N, C). */
export class GlobalMaxPool2D extends InputShapedLayer {
  readonly type = "GlobalMaxPool2D";
  private argmax = new Int32Array(0); // flat index into x of each (n, c)'s maximum

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 3 || inputShape[1] < 1 || inputShape[2] < 1) {
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, C, H, W), got samples of shape ` + formatShape(inputShape),
      );
    }
    return [inputShape[0]];
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, null, null, null], ["N", "C", "H", "W"]);
    this.outputShape(x.shape.slice(1));
    const [N, C, H, W] = x.shape;
    const HW = H * W;
    const y = (this.y = reuse(this.y, [N, C], x.dtype));
    if (this.argmax.length !== N * C) this.argmax = new Int32Array(N * C);
    for (let p = 0; p < N * C; p++) {
      let best = p * HW;
      // first maximum wins ties; a NaN wins (propagates), as in MaxPool2D
      for (let k = best + 1; k < (p + 1) * HW; k++)
        if (x.data[k] > x.data[best] || (Number.isNaN(x.data[k]) && !Number.isNaN(x.data[best]))) best = k;
      this.argmax[p] = best;
      y.data[p] = x.data[best];
    }
    this.x = x;
    return y;
  }

  // Backward: dx[argmax(n, c)] = dy[n, c], zero elsewhere.
  backward(dy: NDArray): NDArray {
    const dx = this.inputGrad(dy);
    dx.data.fill(0);
    for (let p = 0; p < this.argmax.length; p++) dx.data[this.argmax[p]] += dy.data[p];
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}
