// NumPy-compatible array creation, shape manipulation, broadcasting arithmetic and reductions.
// Each function names the NumPy function it mirrors; results are always new contiguous arrays.
// dtype rule (NumPy's for floats): float32 only if every array operand is float32, else float64;
// plain JS numbers behave like Python scalars and do not promote.

import { argmaxRowsOf } from "./rows.ts";
import {
  NDArray,
  allocate,
  checkShape,
  formatShape,
  shapeSize,
  stridesOf,
  type DType,
  type Nested,
  type TypedArray,
} from "./ndarray.ts";

export type ArrayLike = NDArray | number;

// ---------------------------------------------------------------------------------------------
// Creation

/** np.array(nested): nested JS arrays → NDArray. Ragged input is an error naming where. */
export function array(nested: Nested | TypedArray, dtype: DType = "float64"): NDArray {
  if (nested instanceof Float64Array || nested instanceof Float32Array) {
    const data = allocate(dtype, nested.length);
    data.set(nested);
    return new NDArray(data, [nested.length]);
  }
  const shape: number[] = [];
  let probe: Nested = nested;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  const data = allocate(dtype, shapeSize(shape));
  let k = 0;
  const walk = (node: Nested, axis: number, path: number[]): void => {
    if (axis === shape.length) {
      if (typeof node !== "number") {
        throw new TypeError(
          `array: ragged nested sequence: element at [${path.join(", ")}] is a sequence, expected a number`,
        );
      }
      data[k++] = node;
      return;
    }
    if (!Array.isArray(node)) {
      throw new TypeError(
        `array: ragged nested sequence: element at [${path.join(", ")}] is ${typeof node}, expected a sequence of length ${shape[axis]}`,
      );
    }
    if (node.length !== shape[axis]) {
      throw new TypeError(
        `array: ragged nested sequence: element at [${path.join(", ")}] has length ${node.length}, expected ${shape[axis]} (inferred shape ${formatShape(shape)})`,
      );
    }
    for (let i = 0; i < node.length; i++) walk(node[i], axis + 1, [...path, i]);
  };
  walk(nested, 0, []);
  return new NDArray(data, shape);
}

/** An array of `shape` filled with `value` (np.full; float64 unless `dtype` says otherwise). */
export function full(shape: number | readonly number[], value: number, dtype: DType = "float64"): NDArray {
  const s = typeof shape === "number" ? [shape] : shape;
  checkShape(s, "full");
  const data = allocate(dtype, shapeSize(s));
  if (value !== 0) data.fill(value);
  return new NDArray(data, s);
}

/** An array of `shape` filled with 0 (np.zeros; float64 unless `dtype` says otherwise). */
export function zeros(shape: number | readonly number[], dtype: DType = "float64"): NDArray {
  return full(shape, 0, dtype);
}

/** An array of `shape` filled with 1 (np.ones; float64 unless `dtype` says otherwise). */
export function ones(shape: number | readonly number[], dtype: DType = "float64"): NDArray {
  return full(shape, 1, dtype);
}

/** np.zeros_like. */
export function zerosLike(a: NDArray, dtype: DType = a.dtype): NDArray {
  return zeros(a.shape, dtype);
}

/** np.arange(stop) / np.arange(start, stop, step): length ceil((stop − start) / step), as NumPy. */
export function arange(start: number, stop?: number, step = 1, dtype: DType = "float64"): NDArray {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0 || !Number.isFinite(step))
    throw new RangeError(`arange: step must be a finite non-zero number, got ${step}`);
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const data = allocate(dtype, n);
  for (let i = 0; i < n; i++) data[i] = start + i * step;
  return new NDArray(data, [n]);
}

// ---------------------------------------------------------------------------------------------
// Shape manipulation

function normAxis(axis: number, ndim: number, where: string): number {
  if (!Number.isInteger(axis) || axis < -ndim || axis >= ndim) {
    throw new RangeError(`${where}: axis ${axis} is out of bounds for array of dimension ${ndim}`);
  }
  return axis < 0 ? axis + ndim : axis;
}

/** np.reshape: one dimension may be −1 and is inferred. Shares no memory (copies). */
export function reshape(a: NDArray, shape: number | readonly number[]): NDArray {
  const s = typeof shape === "number" ? [shape] : shape.slice();
  const unknown = s.indexOf(-1);
  if (unknown !== -1) {
    if (s.indexOf(-1, unknown + 1) !== -1) throw new RangeError("reshape: can only specify one unknown dimension (-1)");
    const known = s.reduce((p, d, i) => (i === unknown ? p : p * d), 1);
    if (known === 0 || a.size % known !== 0) {
      throw new RangeError(
        `reshape: cannot reshape array of size ${a.size} into shape ${formatShape(shape as number[])}`,
      );
    }
    s[unknown] = a.size / known;
  }
  checkShape(s, "reshape");
  if (shapeSize(s) !== a.size) {
    throw new RangeError(`reshape: cannot reshape array of size ${a.size} into shape ${formatShape(s)}`);
  }
  return new NDArray(a.data.slice(), s);
}

/** Iterate all multi-indices of `shape` in row-major order, calling fn with the running flat index. */
function forEachIndex(shape: readonly number[], fn: (idx: number[], flat: number) => void): void {
  const n = shapeSize(shape);
  if (n === 0) return;
  const idx = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < n; flat++) {
    fn(idx, flat);
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++idx[ax] < shape[ax]) break;
      idx[ax] = 0;
    }
  }
}

/** np.transpose(a, axes): default reverses the axes. */
export function transpose(a: NDArray, axes?: readonly number[]): NDArray {
  const nd = a.ndim;
  const perm = axes ? axes.map((ax) => normAxis(ax, nd, "transpose")) : a.shape.map((_, i) => nd - 1 - i);
  if (perm.length !== nd || new Set(perm).size !== nd) {
    throw new RangeError(`transpose: axes [${axes?.join(", ") ?? ""}] don't match array of dimension ${nd}`);
  }
  const outShape = perm.map((p) => a.shape[p]);
  const srcStrides = perm.map((p) => a.strides[p]);
  const out = allocate(a.dtype, a.size);
  const src = a.data;
  forEachIndex(outShape, (idx, flat) => {
    let off = 0;
    for (let i = 0; i < nd; i++) off += idx[i] * srcStrides[i];
    out[flat] = src[off];
  });
  return new NDArray(out, outShape);
}

/** np.expand_dims(a, axis). */
export function expandDims(a: NDArray, axis: number): NDArray {
  const ax = normAxis(axis, a.ndim + 1, "expandDims");
  const shape = a.shape.slice();
  shape.splice(ax, 0, 1);
  return new NDArray(a.data.slice(), shape);
}

/** np.squeeze(a, axis?). */
export function squeeze(a: NDArray, axis?: number): NDArray {
  if (axis === undefined)
    return new NDArray(
      a.data.slice(),
      a.shape.filter((d) => d !== 1),
    );
  const ax = normAxis(axis, a.ndim, "squeeze");
  if (a.shape[ax] !== 1)
    throw new RangeError(
      `squeeze: cannot select an axis to squeeze out which has size not equal to one (axis ${axis}, shape ${formatShape(a.shape)})`,
    );
  const shape = a.shape.slice();
  shape.splice(ax, 1);
  return new NDArray(a.data.slice(), shape);
}

/** np.flip(a, axis): reverse the order of elements along the given axes (all axes if omitted). */
export function flip(a: NDArray, axis?: number | readonly number[]): NDArray {
  const nd = a.ndim;
  const axes =
    axis === undefined
      ? a.shape.map((_, i) => i)
      : (typeof axis === "number" ? [axis] : axis).map((x) => normAxis(x, nd, "flip"));
  const flipped = new Array<boolean>(nd).fill(false);
  for (const ax of axes) flipped[ax] = true;
  const out = allocate(a.dtype, a.size);
  const src = a.data;
  forEachIndex(a.shape, (idx, flat) => {
    let off = 0;
    for (let i = 0; i < nd; i++) off += (flipped[i] ? a.shape[i] - 1 - idx[i] : idx[i]) * a.strides[i];
    out[flat] = src[off];
  });
  return new NDArray(out, a.shape);
}

/**
 * np.rot90(m, k, axes): rotate by 90° k times in the plane of `axes`, from the first axis towards the
 * second. k may be any integer (taken mod 4 as Python does: −1 ≡ 3). Same decomposition as NumPy:
 * k=1 → transpose(flip(m, axes[1])), k=2 → flip both, k=3 → flip(transpose(m), axes[1]).
 */
export function rot90(m: NDArray, k = 1, axes: readonly [number, number] = [0, 1]): NDArray {
  if (!Number.isInteger(k)) throw new TypeError(`rot90: k must be an integer, got ${k}`);
  if (axes.length !== 2) throw new RangeError("rot90: len(axes) must be 2.");
  const nd = m.ndim;
  if (nd < 2) throw new RangeError(`rot90: array must be at least 2-d, got shape ${formatShape(m.shape)}`);
  if (axes[0] === axes[1] || Math.abs(axes[0] - axes[1]) === nd) throw new RangeError("rot90: Axes must be different.");
  if (axes[0] >= nd || axes[0] < -nd || axes[1] >= nd || axes[1] < -nd) {
    throw new RangeError(`rot90: Axes=(${axes[0]}, ${axes[1]}) out of range for array of ndim=${nd}.`);
  }
  const a0 = normAxis(axes[0], nd, "rot90");
  const a1 = normAxis(axes[1], nd, "rot90");
  const kk = ((k % 4) + 4) % 4;
  if (kk === 0) return m.copy();
  if (kk === 2) return flip(m, [a0, a1]);
  const perm = m.shape.map((_, i) => i);
  perm[a0] = a1;
  perm[a1] = a0;
  return kk === 1 ? transpose(flip(m, a1), perm) : flip(transpose(m, perm), a1);
}

export type PadWidth = number | readonly [number, number] | readonly (readonly [number, number])[];

/** np.pad(a, padWidth, mode="constant", constant_values=value). */
export function pad(a: NDArray, padWidth: PadWidth, value = 0): NDArray {
  const nd = a.ndim;
  let widths: [number, number][];
  if (typeof padWidth === "number") widths = a.shape.map(() => [padWidth, padWidth]);
  else if (padWidth.length === 2 && typeof padWidth[0] === "number") {
    const pw = padWidth as readonly [number, number];
    widths = a.shape.map(() => [pw[0], pw[1]]);
  } else {
    const pw = padWidth as readonly (readonly [number, number])[];
    if (pw.length !== nd)
      throw new RangeError(`pad: padWidth has ${pw.length} entries for an array of dimension ${nd}`);
    widths = pw.map((w) => [w[0], w[1]]);
  }
  for (const [b, e] of widths) {
    if (!Number.isInteger(b) || !Number.isInteger(e) || b < 0 || e < 0) {
      throw new RangeError(`pad: index can't contain negative or non-integer values (got [${b}, ${e}])`);
    }
  }
  const outShape = a.shape.map((d, i) => d + widths[i][0] + widths[i][1]);
  const out = full(outShape, value, a.dtype);
  const outStrides = out.strides;
  forEachIndex(a.shape, (idx, flat) => {
    let off = 0;
    for (let i = 0; i < nd; i++) off += (idx[i] + widths[i][0]) * outStrides[i];
    out.data[off] = a.data[flat];
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Broadcasting elementwise arithmetic

/** NumPy broadcasting: align trailing axes; each pair must be equal or one of them 1. */
export function broadcastShapes(a: readonly number[], b: readonly number[], where = "broadcast"): number[] {
  const nd = Math.max(a.length, b.length);
  const out = new Array<number>(nd);
  for (let i = 0; i < nd; i++) {
    const da = a[a.length - nd + i] ?? 1;
    const db = b[b.length - nd + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(
        `${where}: operands could not be broadcast together with shapes ${formatShape(a)} ${formatShape(b)}`,
      );
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

function resultDtype(...xs: ArrayLike[]): DType {
  const arrays = xs.filter((x): x is NDArray => x instanceof NDArray);
  return arrays.length > 0 && arrays.every((x) => x.dtype === "float32") ? "float32" : "float64";
}

function asArray(x: ArrayLike): NDArray {
  return x instanceof NDArray ? x : new NDArray(Float64Array.of(x), []);
}

/** Strides of `a` viewed as broadcast to `outShape`: 0 along broadcast (size-1 or missing) axes. */
function broadcastStrides(a: NDArray, outShape: readonly number[]): number[] {
  const nd = outShape.length;
  const s = new Array<number>(nd).fill(0);
  for (let i = 0; i < a.ndim; i++) {
    const j = nd - a.ndim + i;
    s[j] = a.shape[i] === 1 ? 0 : a.strides[i];
  }
  return s;
}

/** Apply a binary function elementwise with NumPy broadcasting. */
export function binary(x: ArrayLike, y: ArrayLike, f: (p: number, q: number) => number, name = "binary"): NDArray {
  const dtype = resultDtype(x, y);
  const a = asArray(x);
  const b = asArray(y);
  const shape = broadcastShapes(a.shape, b.shape, name);
  const n = shapeSize(shape);
  const out = allocate(dtype, n);
  const ad = a.data;
  const bd = b.data;
  if (a.size === n && b.size === n) {
    for (let i = 0; i < n; i++) out[i] = f(ad[i], bd[i]);
  } else if (b.size === 1 && a.size === n) {
    const q = bd[0];
    for (let i = 0; i < n; i++) out[i] = f(ad[i], q);
  } else if (a.size === 1 && b.size === n) {
    const p = ad[0];
    for (let i = 0; i < n; i++) out[i] = f(p, bd[i]);
  } else {
    const sa = broadcastStrides(a, shape);
    const sb = broadcastStrides(b, shape);
    forEachIndex(shape, (idx, flat) => {
      let oa = 0;
      let ob = 0;
      for (let i = 0; i < idx.length; i++) {
        oa += idx[i] * sa[i];
        ob += idx[i] * sb[i];
      }
      out[flat] = f(ad[oa], bd[ob]);
    });
  }
  return new NDArray(out, shape);
}

/** a + b elementwise, with NumPy's broadcasting (np.add). */
export const add = (a: ArrayLike, b: ArrayLike): NDArray => binary(a, b, (p, q) => p + q, "add");
/** a − b elementwise, with NumPy's broadcasting (np.subtract). */
export const sub = (a: ArrayLike, b: ArrayLike): NDArray => binary(a, b, (p, q) => p - q, "sub");
/** a · b elementwise, with NumPy's broadcasting (np.multiply). */
export const mul = (a: ArrayLike, b: ArrayLike): NDArray => binary(a, b, (p, q) => p * q, "mul");
/** a / b elementwise, with NumPy's broadcasting (np.divide). */
export const div = (a: ArrayLike, b: ArrayLike): NDArray => binary(a, b, (p, q) => p / q, "div");
/** The larger of a and b elementwise, NaN if either is (np.maximum), with broadcasting. */
export const maximum = (a: ArrayLike, b: ArrayLike): NDArray =>
  binary(a, b, (p, q) => (p > q || Number.isNaN(p) ? p : q), "maximum");
/** The smaller of a and b elementwise, NaN if either is (np.minimum), with broadcasting. */
export const minimum = (a: ArrayLike, b: ArrayLike): NDArray =>
  binary(a, b, (p, q) => (p < q || Number.isNaN(p) ? p : q), "minimum");
/** a to the power b elementwise, with NumPy's broadcasting (np.power). */
export const power = (a: ArrayLike, b: ArrayLike): NDArray => binary(a, b, (p, q) => p ** q, "power");

/** Apply a unary function elementwise. */
export function map(a: NDArray, f: (v: number) => number): NDArray {
  const out = allocate(a.dtype, a.size);
  const src = a.data;
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]);
  return new NDArray(out, a.shape);
}

/** e^a elementwise (np.exp). */
export const exp = (a: NDArray): NDArray => map(a, Math.exp);
/** The natural logarithm elementwise (np.log). */
export const log = (a: NDArray): NDArray => map(a, Math.log);
/** tanh elementwise (np.tanh). */
export const tanh = (a: NDArray): NDArray => map(a, Math.tanh);
/** The square root elementwise (np.sqrt). */
export const sqrt = (a: NDArray): NDArray => map(a, Math.sqrt);
/** |a| elementwise (np.abs). */
export const abs = (a: NDArray): NDArray => map(a, Math.abs);
/** −a elementwise (np.negative). */
export const neg = (a: NDArray): NDArray => map(a, (v) => -v);
/** a² elementwise (np.square). */
export const square = (a: NDArray): NDArray => map(a, (v) => v * v);

// ---------------------------------------------------------------------------------------------
// Products

/**
 * np.matmul (the @ operator): 1-D operands are promoted (prepend / append a 1 dimension, removed
 * afterwards), leading "batch" dimensions broadcast.
 */
export function matmul(x: NDArray, y: NDArray): NDArray {
  if (x.ndim === 0 || y.ndim === 0)
    throw new RangeError("matmul: input operand does not have enough dimensions (scalars are not allowed, use mul)");
  const a = x.ndim === 1 ? new NDArray(x.data, [1, x.shape[0]]) : x;
  const b = y.ndim === 1 ? new NDArray(y.data, [y.shape[0], 1]) : y;
  const n = a.shape[a.ndim - 2];
  const k = a.shape[a.ndim - 1];
  const k2 = b.shape[b.ndim - 2];
  const m = b.shape[b.ndim - 1];
  if (k !== k2) {
    throw new RangeError(
      `matmul: mismatch in core dimension: ${formatShape(x.shape)} @ ${formatShape(y.shape)} (size ${k} is different from ${k2})`,
    );
  }
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, "matmul");
  const dtype = resultDtype(x, y);
  const out = allocate(dtype, shapeSize(batch) * n * m);
  const bsA = broadcastStrides(new NDArray(new Float64Array(shapeSize(batchA)), batchA), batch);
  const bsB = broadcastStrides(new NDArray(new Float64Array(shapeSize(batchB)), batchB), batch);
  const ad = a.data;
  const bd = b.data;
  forEachIndex(batch.length ? batch : [1], (idx, flat) => {
    let oa = 0;
    let ob = 0;
    for (let i = 0; i < batch.length; i++) {
      oa += idx[i] * bsA[i];
      ob += idx[i] * bsB[i];
    }
    const aOff = oa * n * k;
    const bOff = ob * k * m;
    const oOff = flat * n * m;
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += ad[aOff + i * k + p] * bd[bOff + p * m + j];
        out[oOff + i * m + j] = s;
      }
    }
  });
  let shape = [...batch, n, m];
  if (x.ndim === 1) shape = [...batch, m];
  if (y.ndim === 1) shape = x.ndim === 1 ? batch : [...batch, n];
  return new NDArray(out, shape);
}

/**
 * np.dot: 1-D·1-D is the inner product (a 0-d array), 2-D·2-D is the matrix product, and in general
 * dot(a, b)[i..., j...] = Σ_k a[i..., k] · b[j..., k, :] (last axis of a with second-to-last of b).
 */
export function dot(a: NDArray, b: NDArray): NDArray {
  if (a.ndim === 0 || b.ndim === 0) return mul(a, b);
  const k = a.shape[a.ndim - 1];
  const kb = b.ndim === 1 ? b.shape[0] : b.shape[b.ndim - 2];
  if (k !== kb) {
    throw new RangeError(
      `dot: shapes ${formatShape(a.shape)} and ${formatShape(b.shape)} not aligned: ${k} (dim ${a.ndim - 1}) != ${kb} (dim ${Math.max(0, b.ndim - 2)})`,
    );
  }
  if (b.ndim <= 2) return matmul(a, b);
  // General case: a as (A, K), b as (B, K, C) → out (A, B, C).
  const A = a.size / k;
  const C = b.shape[b.ndim - 1];
  const B = b.size / (k * C);
  const out = allocate(resultDtype(a, b), A * B * C);
  for (let i = 0; i < A; i++) {
    for (let j = 0; j < B; j++) {
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a.data[i * k + p] * b.data[j * k * C + p * C + c];
        out[(i * B + j) * C + c] = s;
      }
    }
  }
  return new NDArray(out, [...a.shape.slice(0, -1), ...b.shape.slice(0, -2), C]);
}

// ---------------------------------------------------------------------------------------------
// Reductions

export interface ReduceOptions {
  axis?: number | readonly number[];
  keepdims?: boolean;
}

function reduce(
  a: NDArray,
  opts: ReduceOptions,
  init: number,
  step: (acc: number, v: number) => number,
  where: string,
): { out: NDArray; count: number } {
  const nd = a.ndim;
  const axes =
    opts.axis === undefined
      ? a.shape.map((_, i) => i)
      : (typeof opts.axis === "number" ? [opts.axis] : opts.axis).map((x) => normAxis(x, nd, where));
  if (new Set(axes).size !== axes.length) throw new RangeError(`${where}: duplicate value in 'axis'`);
  const reduced = new Array<boolean>(nd).fill(false);
  for (const ax of axes) reduced[ax] = true;
  const keptShape = a.shape.map((d, i) => (reduced[i] ? 1 : d));
  const keptStrides = stridesOf(keptShape);
  const acc = new Float64Array(shapeSize(keptShape)).fill(init);
  forEachIndex(a.shape, (idx, flat) => {
    let off = 0;
    for (let i = 0; i < nd; i++) if (!reduced[i]) off += idx[i] * keptStrides[i];
    acc[off] = step(acc[off], a.data[flat]);
  });
  const data = allocate(a.dtype, acc.length);
  data.set(acc);
  const shape = opts.keepdims ? keptShape : a.shape.filter((_, i) => !reduced[i]);
  let count = 1;
  for (const ax of axes) count *= a.shape[ax];
  return { out: new NDArray(data, shape), count };
}

/** np.sum(a, axis, keepdims). With no axis the result is a 0-d array; use `.data[0]` or `sumAll`. */
export function sum(a: NDArray, opts: ReduceOptions = {}): NDArray {
  return reduce(a, opts, 0, (s, v) => s + v, "sum").out;
}

/** np.mean(a, axis, keepdims). */
export function mean(a: NDArray, opts: ReduceOptions = {}): NDArray {
  const { out, count } = reduce(a, opts, 0, (s, v) => s + v, "mean");
  for (let i = 0; i < out.size; i++) out.data[i] /= count;
  return out;
}

/** np.max(a, axis, keepdims). */
export function max(a: NDArray, opts: ReduceOptions = {}): NDArray {
  if (a.size === 0) throw new RangeError("max: zero-size array to reduction operation maximum which has no identity");
  return reduce(a, opts, -Infinity, (s, v) => (v > s || Number.isNaN(v) ? v : s), "max").out;
}

/** Sum of all elements as a number (np.sum(a) as a Python float), accumulated in float64. */
export function sumAll(a: NDArray): number {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) s += a.data[i];
  return s;
}

/** np.argmax along the last axis, as integer indices. */
export function argmaxLast(a: NDArray): number[] {
  const m = a.shape[a.ndim - 1];
  const rows = a.size / m;
  return Array.from(argmaxRowsOf(a.data, rows, m));
}

// ---------------------------------------------------------------------------------------------
// Comparison

/** np.allclose: |a − b| <= atol + rtol·|b| elementwise, with broadcasting. */
export function allclose(a: ArrayLike, b: ArrayLike, rtol = 1e-5, atol = 1e-8): boolean {
  const d = binary(a, b, (p, q) => (Math.abs(p - q) <= atol + rtol * Math.abs(q) ? 1 : 0), "allclose");
  return d.data.every((v) => v === 1);
}
