// NDArray: a dense, row-major (C-order) n-dimensional array over a typed array, as NumPy's ndarray
// with contiguous storage. Views are not modelled: every op returns a new contiguous array, which keeps
// the indexing arithmetic in one place (strides below) and makes hot loops plain.

export type DType = "float64" | "float32";
export type TypedArray = Float64Array | Float32Array;

/** Nested JS arrays of numbers, as `toArray()` returns and `array()` accepts. */
export type Nested = number | Nested[];

export function allocate(dtype: DType, n: number): TypedArray {
  return dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
}

export function dtypeOf(data: TypedArray): DType {
  return data instanceof Float32Array ? "float32" : "float64";
}

export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i]; // indexed: an iterator would allocate per call
  return n;
}

export function formatShape(shape: readonly number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
}

export function checkShape(shape: readonly number[], where: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`${where}: invalid shape ${formatShape(shape)}: dimensions must be non-negative integers`);
    }
  }
}

/** Row-major strides in elements: strides[i] = prod(shape[i+1:]). */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i];
  }
  return strides;
}

/**
 * Make `data` a's storage from now on, holding a's elements (the caller copies them): the same element
 * type and length. For the kernels alone (src/kernels/backend.ts, keepResident), which move a model's
 * parameters into their own memory; an array taken from a.data before keeps the old storage.
 */
export function replaceData(a: NDArray, data: TypedArray): void {
  if (data.constructor !== a.data.constructor || data.length !== a.data.length)
    throw new RangeError(`replaceData: expected a ${a.data.constructor.name} of ${a.data.length} elements`);
  (a as { data: TypedArray }).data = data;
}

/** An n-dimensional array: a typed array (float32, float64, int32…) viewed row-major in `shape`, as NumPy's ndarray. */
export class NDArray {
  readonly shape: number[];
  readonly data: TypedArray;
  readonly strides: number[];

  /** Wrap `data` (not copied) as an array of `shape`; its length must be the product of the dimensions. */
  constructor(data: TypedArray, shape: readonly number[]) {
    checkShape(shape, "NDArray");
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new RangeError(`NDArray: data has ${data.length} elements but shape ${formatShape(shape)} needs ${size}`);
    }
    this.data = data;
    this.shape = shape.slice();
    this.strides = stridesOf(shape);
  }

  get dtype(): DType {
    return dtypeOf(this.data);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    return this.data.length;
  }

  /** Flat offset of a full index; negative indices count from the end, as in NumPy. */
  offset(idx: readonly number[]): number {
    if (idx.length !== this.shape.length) {
      throw new RangeError(`NDArray.get: got ${idx.length} indices for an array of shape ${formatShape(this.shape)}`);
    }
    let off = 0;
    for (let i = 0; i < idx.length; i++) {
      const n = this.shape[i];
      let k = idx[i];
      if (!Number.isInteger(k) || k < -n || k >= n) {
        throw new RangeError(`NDArray.get: index ${k} is out of bounds for axis ${i} with size ${n}`);
      }
      if (k < 0) k += n;
      off += k * this.strides[i];
    }
    return off;
  }

  /** The element at one index per axis, e.g. `a.get(i, j)`. */
  get(...idx: number[]): number {
    return this.data[this.offset(idx)];
  }

  /** Write `value` at one index per axis: `a.set(v, i, j)`. */
  set(value: number, ...idx: number[]): void {
    this.data[this.offset(idx)] = value;
  }

  /** Nested JS arrays, as NumPy's `tolist()`. A 0-d array gives its number. */
  toArray(): Nested {
    const { shape, data } = this;
    if (shape.length === 0) return data[0];
    const build = (axis: number, off: number): Nested[] => {
      const out: Nested[] = [];
      const n = shape[axis];
      const stride = this.strides[axis];
      for (let i = 0; i < n; i++) {
        out.push(axis === shape.length - 1 ? data[off + i] : build(axis + 1, off + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }

  /** A copy, optionally in another dtype. */
  copy(dtype: DType = this.dtype): NDArray {
    const out = allocate(dtype, this.size);
    out.set(this.data);
    return new NDArray(out, this.shape);
  }

  /** A copy converted to `dtype` (as NumPy's `astype`). */
  astype(dtype: DType): NDArray {
    return this.copy(dtype);
  }

  toString(): string {
    return `NDArray(${JSON.stringify(this.toArray())}, shape=${formatShape(this.shape)}, dtype=${this.dtype})`;
  }
}
