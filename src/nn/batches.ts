// Batches for the training loop and evaluation: copying selected samples into reused buffers, checking
// that inputs and targets agree (losses count their own correct predictions: Loss.countCorrect).

import { NDArray, allocate, formatShape, shapeSize } from "../nd/ndarray.ts";
import { argmaxRowsOf } from "../nd/rows.ts";
import { ShapeError, type Layer } from "./layer.ts";
import type { Target } from "./losses.ts";

/** Integer labels from labels or one-hot/probability rows (argmax). */
export function labelsOf(target: Target, N: number, K: number): ArrayLike<number> {
  if (!(target instanceof NDArray)) return target;
  if (target.ndim === 1) return target.data;
  return argmaxRowsOf(target.data, N, K);
}

export function targetCount(y: Target): number {
  return y instanceof NDArray ? y.shape[0] : y.length;
}

/** What a value is, for an error about an argument of the wrong kind: "a Float32Array of 3136 bytes". */
function describeArgument(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name} of ${v.byteLength} bytes`;
  if (Array.isArray(v)) return `a plain array of length ${v.length}`;
  // an object without a prototype (Object.create(null)) has no constructor to name
  const maker = typeof v === "object" ? (v as { constructor?: { name?: unknown } }).constructor?.name : undefined;
  const what = typeof maker === "string" ? maker : typeof v;
  return `${/^[AEIOUaeiou]/.test(what) ? "an" : "a"} ${what}`;
}

/**
 * x must be an NDArray: a typed or nested array has no shape to check, and would otherwise fail deep inside
 * with a message naming neither the argument nor the call (JavaScript callers have no compiler to stop them).
 */
export function checkInputArray(x: unknown, where: string): asserts x is NDArray {
  if (x instanceof NDArray) return;
  throw new TypeError(
    `${where}: x must be an NDArray of shape (N, ...sample shape), got ${describeArgument(x)}; ` +
      "wrap the values: new NDArray(values, [N, C, H, W]) or array(nested)",
  );
}

/** y as Target allows: an NDArray, integer labels in a typed or plain array. */
function checkTargetKind(y: unknown, where: string): asserts y is Target {
  if (y instanceof NDArray || Array.isArray(y) || (ArrayBuffer.isView(y) && !(y instanceof DataView))) return;
  throw new TypeError(
    `${where}: y must be class labels (an Int32Array or an array of integers) or an NDArray of targets, ` +
      `got ${describeArgument(y)}`,
  );
}

export function checkTargets(x: NDArray, y: Target, where: string): void {
  checkInputArray(x, where);
  checkTargetKind(y, where);
  if (x.ndim < 1) throw new ShapeError(`${where}: x must have a batch axis, got shape ${formatShape(x.shape)}`);
  if (x.shape[0] === 0) throw new RangeError(`${where}: no samples (x has shape ${formatShape(x.shape)})`);
  if (targetCount(y) !== x.shape[0]) {
    throw new ShapeError(
      `${where}: x has ${x.shape[0]} samples but y has ${targetCount(y)} (x ${formatShape(x.shape)}, y ${y instanceof NDArray ? formatShape(y.shape) : `(${y.length},)`})`,
    );
  }
}

/**
 * Integer class labels checked over the whole data set before the first batch, so that a bad label is named
 * by its index in y: the loss checks each batch too, but knows only a sample's place in a shuffled batch.
 * `classes`: the model's number of outputs when its output shape is known (else only integers ≥ 0 are checked).
 */
export function checkClassLabels(y: Target, classes: number | null, where: string): void {
  const labels = y instanceof NDArray ? (y.ndim === 1 ? y.data : null) : y;
  if (labels === null) return; // one-hot or probability rows: the loss checks their shape
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!Number.isInteger(c)) throw new RangeError(`${where}: y[${i}] is ${c}, not an integer class index`);
    if (c < 0 || (classes !== null && c >= classes)) {
      const range = classes === null ? "below 0" : `outside [0, ${classes}) for the model's ${classes} classes`;
      throw new RangeError(`${where}: y[${i}] is ${c}, ${range}`);
    }
  }
}

/** True when x is a batch of samples of this shape (a loop: steady-state training allocates nothing). */
export function sampleShapeIs(x: NDArray, sample: readonly number[]): boolean {
  if (x.ndim !== sample.length + 1) return false;
  for (let i = 0; i < sample.length; i++) if (x.shape[i + 1] !== sample[i]) return false;
  return true;
}

/** Refuse a stack whose layers hold parameters of different dtypes (saving and loading need one). */
export function checkOneDtype(layers: Layer[], name: string): void {
  const byDtype = new Map<string, string[]>();
  for (const l of layers) {
    const d = l.params()[0]?.value.dtype;
    if (d) byDtype.set(d, [...(byDtype.get(d) ?? []), l.describe()]);
  }
  if (byDtype.size > 1) {
    const list = [...byDtype].map(([d, ls]) => `${d}: ${ls.join(", ")}`).join("; ");
    throw new TypeError(
      `Sequential ${name}: layers mix dtypes (${list}); give every layer one dtype, or pass {dtype} to convert them all`,
    );
  }
}

/** Copies selected samples of x into a reused batch buffer (one per batch size seen). */
export class BatchBuffer {
  private readonly sample: number;
  private readonly bufs = new Map<number, NDArray>();
  constructor(private readonly src: NDArray) {
    this.sample = shapeSize(src.shape.slice(1));
  }
  private buf(n: number): NDArray {
    let b = this.bufs.get(n);
    if (!b) {
      b = new NDArray(allocate(this.src.dtype, n * this.sample), [n, ...this.src.shape.slice(1)]);
      this.bufs.set(n, b);
    }
    return b;
  }
  gather(order: ArrayLike<number>, start: number, n: number): NDArray {
    const b = this.buf(n);
    const s = this.sample;
    const src = this.src.data;
    const dst = b.data;
    // element by element: a subarray per sample would allocate a view per sample and batch
    for (let i = 0; i < n; i++) {
      const from = order[start + i] * s;
      const to = i * s;
      for (let j = 0; j < s; j++) dst[to + j] = src[from + j];
    }
    return b;
  }
  range(start: number, n: number): NDArray {
    const b = this.buf(n);
    b.data.set(this.src.data.subarray(start * this.sample, (start + n) * this.sample));
    return b;
  }
}

/** The same for targets: NDArray rows or integer labels. */
export class TargetBuffer {
  private readonly x: BatchBuffer | null;
  private readonly labels: Int32Array | null;
  private readonly bufs = new Map<number, Int32Array>();
  constructor(private readonly src: Target) {
    // Integer labels stay labels; any other plain array (soft BCE targets) becomes an (N,) float64 array.
    const asLabels = !(src instanceof NDArray) && Array.prototype.every.call(src, (v: number) => Number.isInteger(v));
    const asArray = src instanceof NDArray ? src : asLabels ? null : new NDArray(Float64Array.from(src), [src.length]);
    this.x = asArray ? new BatchBuffer(asArray) : null;
    this.labels = asLabels ? Int32Array.from(src as ArrayLike<number>) : null;
  }
  private buf(n: number): Int32Array {
    let b = this.bufs.get(n);
    if (!b) this.bufs.set(n, (b = new Int32Array(n)));
    return b;
  }
  gather(order: ArrayLike<number>, start: number, n: number): Target {
    if (this.x) return this.x.gather(order, start, n);
    const b = this.buf(n);
    for (let i = 0; i < n; i++) b[i] = this.labels![order[start + i]];
    return b;
  }
  range(start: number, n: number): Target {
    if (this.x) return this.x.range(start, n);
    const b = this.buf(n);
    b.set(this.labels!.subarray(start, start + n));
    return b;
  }
}
