// The one interface every layer implements (ConvNetJS-style), and the small helpers they share.
//
// Conventions (docs/derivation.md §0):
//   - tensors are NDArrays in NCHW (images) or NF (features); the batch axis is always first;
//   - forward(x) caches exactly what backward needs; backward(dy) returns dx = ∂L/∂x and
//     ACCUMULATES parameter gradients (grad += …), so zeroGrad() must run between steps;
//     backward(dy, {needDx: false}) may skip computing dx (the returned array's contents are then
//     unspecified): nobody reads a first layer's dx, and for a first conv layer that is a whole GEMM;
//   - the layers of src/nn/ run their arithmetic through `kernels` (src/kernels/backend.ts), whose
//     forwards return a saved context that the matching backward consumes (src/kernels/kernels.ts);
//   - backward never writes into dy: the gradient it receives belongs to the layer above;
//   - outputs and dx live in buffers the layer reuses from batch to batch, so a returned array
//     is valid until the same layer's next forward/backward. Copy it if you need to keep it.

import type { TypedConfig } from "./config.ts";
import { NDArray, allocate, formatShape, shapeSize, type DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";

import { fillZero } from "../kernels/backend.ts";
import { reuse } from "../kernels/buffers.ts";
export { reuse };

export interface ForwardOptions {
  /** Training mode: dropout drops, batch norm uses batch statistics and updates running ones. */
  training?: boolean;
}

export interface BackwardOptions {
  /** Compute dx (default true). False: only accumulate parameter gradients; dx's contents are unspecified. */
  needDx?: boolean;
}

/**
 * A trainable (or, with trainable=false, state-only) tensor and the gradient accumulated for it.
 *
 * Once a model trains on the wasm backend where SharedArrayBuffer is available, the trainer keeps every
 * trainable float32 param's value and grad in the kernels' linear memory, where each step reads and updates
 * them in place (backend.ts keepResident): from the first step on, `value.data` and `grad.data` are
 * Float32Array views of a SharedArrayBuffer, holding the same values (up to a limit on that memory: past it
 * they stay ordinary arrays; setDtype replaces them with ordinary ones). Read them through the Param (an
 * array taken from it before training keeps the old storage, which training no longer updates), and copy
 * (`slice()`) what you keep or post: a SharedArrayBuffer cannot be transferred, a structured clone of such
 * a view shares the memory instead of copying it (it follows training), and its `.buffer` is the whole
 * memory. A subarray or another view of that memory is valid only while the Param holds its array: once
 * that is dropped (setDtype, a discarded model), the space goes to other arrays.
 */
export interface Param {
  name: string;
  value: NDArray;
  grad: NDArray;
  /** False for state such as batch-norm running statistics: saved with the model, never stepped. */
  trainable: boolean;
}

/** A serialisable layer description: `{type, ...options}`; `layerFromConfig` turns it back into a layer. */
export type LayerConfig = TypedConfig;

/** A shape mismatch between what a layer expects and what it was given. */
export class ShapeError extends RangeError {
  override name = "ShapeError";
}

/**
 * A tensor of a functional graph (Keras's symbolic tensor): the shape of one sample and the node that
 * produces it (null for a model input, see Input in graph.ts). Layers are applied to these to build a
 * graph; a Model runs it on real arrays.
 */
export class SymbolicTensor {
  constructor(
    readonly shape: readonly number[],
    readonly node: GraphNode | null,
    readonly name: string,
  ) {}
}

/** One application of a layer in a graph: its inputs and output tensor. */
export interface GraphNode {
  readonly name: string;
  readonly layer: Layer;
  readonly inputs: readonly SymbolicTensor[];
}

const nameCounts = new Map<string, number>();
/** "conv2d_1", "conv2d_2", …: Keras-style default node names, unique within the process. */
export function uniqueNodeName(type: string): string {
  const base = type.toLowerCase();
  const n = (nameCounts.get(base) ?? 0) + 1;
  nameCounts.set(base, n);
  return `${base}_${n}`;
}

/**
 * The base of every layer: a hand-written `forward`/`backward` pair, its parameters (`params()`), its output shape for
 * an input sample shape and a `config()` that `layerFromConfig` rebuilds it from. Subclass it and `registerLayer` for a
 * layer of your own.
 */
export abstract class Layer {
  abstract readonly type: string;
  /** The graph node this layer was applied in, if any (a layer is applied at most once). */
  node: GraphNode | null = null;
  /** Set by Sequential: the layer's position, used in error messages. */
  index = -1;

  /** y = f(x). Caches what backward needs when it will be called (always, unless training is false and nothing is cached). */
  abstract forward(x: NDArray, opts?: ForwardOptions): NDArray;
  /** Given dy = ∂L/∂y, return dx = ∂L/∂x and accumulate ∂L/∂θ into each param's grad. */
  abstract backward(dy: NDArray, opts?: BackwardOptions): NDArray;
  /** Shape of one output sample given the shape of one input sample (batch axis excluded). Throws ShapeError. */
  abstract outputShape(inputShape: readonly number[]): number[];
  /** Options that rebuild this layer (without its weights). */
  abstract config(): LayerConfig;

  params(): Param[] {
    return NO_PARAMS;
  }

  /**
   * False while parameters wait for the input shape (a Conv2D without inChannels before its first
   * build or forward). Composite layers are built when all their parts are.
   */
  isBuilt(): boolean {
    return true;
  }

  /** Output sample shape for the input sample shapes: one input, except merge layers (Add, Concatenate…). */
  inferShape(inputShapes: readonly (readonly number[])[]): number[] {
    if (inputShapes.length !== 1)
      throw new ShapeError(`${this.describe()}: takes one input, got ${inputShapes.length}`);
    return this.outputShape(inputShapes[0]);
  }

  /** forward on the inputs of a graph node (one, except merge layers). */
  forwardInputs(xs: readonly NDArray[], opts?: ForwardOptions): NDArray {
    return this.forward(xs[0], opts);
  }

  /** backward for a graph node: the gradient of each input, in order (a list the next call refills). */
  backwardInputs(dy: NDArray, opts?: BackwardOptions): NDArray[] {
    const dxs = (this.inputGrads ??= []);
    dxs[0] = this.backward(dy, opts);
    return dxs;
  }
  private inputGrads: NDArray[] | null = null; // backwardInputs' list: a training step allocates nothing

  /**
   * Apply the layer to symbolic tensors (the functional API, see graph.ts): checks the shapes now and
   * returns the output tensor. The node is named `name` (default "<type>_<k>").
   */
  apply(inputs: SymbolicTensor | readonly SymbolicTensor[], name?: string): SymbolicTensor {
    const list: readonly SymbolicTensor[] = inputs instanceof SymbolicTensor ? [inputs] : inputs;
    const nodeName = name ?? uniqueNodeName(this.type);
    if (typeof nodeName !== "string" || nodeName === "")
      throw new TypeError(`${this.type}.apply: the node name must be a non-empty string`);
    if (!Array.isArray(list) || list.length === 0 || !list.every((t) => t instanceof SymbolicTensor)) {
      throw new TypeError(
        `node '${nodeName}' (${this.type}): apply() takes a symbolic tensor (from Input or another layer's apply) or a list of them`,
      );
    }
    if (this.node !== null) {
      throw new Error(
        `node '${nodeName}' (${this.type}): this layer is already applied in node '${this.node.name}'; a layer object is used once per graph (weight sharing is not supported): create another layer`,
      );
    }
    let shape: number[];
    try {
      shape = this.inferShape(list.map((t) => t.shape));
    } catch (e) {
      if (!(e instanceof RangeError || e instanceof TypeError)) throw e;
      const given = list.map((t) => `'${t.name}' ${formatShape(t.shape)}`).join(", ");
      throw new ShapeError(`node '${nodeName}' (${this.type}) applied to ${given}: ${e.message}`, { cause: e });
    }
    const node: GraphNode = { name: nodeName, layer: this, inputs: list.slice() };
    this.node = node;
    return new SymbolicTensor(shape, node, nodeName);
  }

  /** (Re)draw the initial weights from rng. Layers without weights ignore it. */
  initialize(_rng: RandomState): void {
    /* no weights */
  }

  /** Convert parameters, gradients and state to a dtype (float64 for gradient checks). */
  setDtype(dtype: DType): void {
    for (const p of this.params()) {
      if (p.value.dtype !== dtype) {
        p.value = p.value.astype(dtype);
        p.grad = p.grad.astype(dtype);
      }
    }
    this.onParamsReplaced();
  }

  /** Called after params' arrays were replaced (setDtype, loading) so a layer can refresh its references. */
  protected onParamsReplaced(): void {
    /* layers keeping direct references override this */
  }

  zeroGrad(): void {
    const ps = this.params();
    for (let i = 0; i < ps.length; i++) fillZero(ps[i].grad.data);
  }

  toJSON(): LayerConfig {
    return this.config();
  }

  /** "layer 3 (Dense)", "node 'dense_2' (Dense)" in a graph, or "Dense" outside a model. */
  describe(): string {
    if (this.node !== null) return `node '${this.node.name}' (${this.type})`;
    return this.index >= 0 ? `layer ${this.index} (${this.type})` : this.type;
  }

  /** Throw a ShapeError that names this layer and both shapes. */
  protected shapeError(expected: string, actual: readonly number[]): never {
    throw new ShapeError(`${this.describe()}: expected input of shape ${expected}, got ${formatShape(actual)}`);
  }

  /** Check a forward input's rank (and optionally trailing dims; null = any). */
  protected expectInput(x: NDArray, dims: readonly (number | null)[], names: readonly string[]): void {
    let ok = x.ndim === dims.length;
    for (let i = 0; ok && i < dims.length; i++) ok = dims[i] === null || x.shape[i] === dims[i];
    if (!ok) this.shapeError(`(${names.map((n, i) => (dims[i] === null ? n : String(dims[i]))).join(", ")})`, x.shape);
  }

  /** Check that dy has the shape of the last forward output. */
  protected expectGrad(dy: NDArray, y: NDArray | null): void {
    if (y === null) throw new Error(`${this.describe()}: backward called before forward`);
    let same = dy.shape.length === y.shape.length;
    for (let i = 0; same && i < dy.shape.length; i++) same = dy.shape[i] === y.shape[i];
    if (!same) {
      throw new ShapeError(
        `${this.describe()}: backward expected dy of shape ${formatShape(y.shape)} (the output's), got ${formatShape(dy.shape)}`,
      );
    }
  }
}

/** What a layer without parameters returns from params(): one frozen empty list, not a new one per call. */
const NO_PARAMS: Param[] = Object.freeze([]) as unknown as Param[];

/** A zeroed parameter with a gradient of the same shape. */
export function makeParam(name: string, shape: readonly number[], dtype: DType = "float32", trainable = true): Param {
  if (paramBudget !== null) spendParamBudget(paramBudget, name, shape);
  return {
    name,
    value: new NDArray(allocate(dtype, shapeSize(shape)), shape),
    grad: new NDArray(allocate(dtype, shapeSize(shape)), shape),
    trainable,
  };
}

// While a model is rebuilt from a file, the parameter values its layers may create: a config declaring
// a huge layer (at any depth, built eagerly or lazily from the input shape) is refused here, before its
// arrays are allocated and initialised (which would take gigabytes and minutes). null: no limit.
interface ParamBudget {
  readonly limit: number;
  left: number;
  readonly what: string;
}
let paramBudget: ParamBudget | null = null;

/**
 * A parameter refused by withParamBudget's limit. makeParam knows only the parameter's name, so a model building its
 * layers adds the layer's (`within`), for the file's reader to find it.
 */
export class ParamBudgetError extends RangeError {
  /** The same refusal, prefixed with the layer (or model) that was creating the parameter. */
  within(what: string): ParamBudgetError {
    return new ParamBudgetError(`${what}: ${this.message}`, { cause: this });
  }
}

function spendParamBudget(budget: ParamBudget, name: string, shape: readonly number[]): void {
  const size = shapeSize(shape);
  if (!(size <= budget.left)) {
    throw new ParamBudgetError(
      `parameter "${name}" of shape ${formatShape(shape)} would hold ${size} values, but ${budget.what} ` +
        `allows ${budget.limit} in all (${budget.left} left): refusing to allocate it`,
    );
  }
  budget.left -= size;
}

/**
 * Run `build` with at most `limit` parameter values created by makeParam (the layers' weights and state);
 * past it makeParam throws a RangeError naming the parameter, its shape and `what` set the limit
 * ("the weights file"). Used when a model is built from a file, whose weights table bounds its size.
 */
export function withParamBudget<T>(limit: number, what: string, build: () => T): T {
  const outer = paramBudget;
  paramBudget = { limit, left: limit, what };
  try {
    return build();
  } finally {
    paramBudget = outer;
  }
}

/**
 * A layer without parameters whose dx has its input's shape: it keeps its last input (for that shape)
 * and reuses its output and dx buffers from batch to batch.
 */
export abstract class InputShapedLayer extends Layer {
  protected x: NDArray | null = null;
  protected y: NDArray | null = null;
  protected dx: NDArray | null = null;

  /** Backward's dx buffer (the last input's shape and dtype), after checking dy against the last output. */
  protected inputGrad(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    return (this.dx = reuse(this.dx, x.shape, x.dtype));
  }
}

/** Check that a constructor was given an options object; `fields` shows its main ones ("{rate, seed?}"). */
export function expectOptions(layer: string, opts: unknown, fields: string): void {
  if (typeof opts !== "object" || opts === null) throw new TypeError(`${layer}: expected an options object ${fields}`);
}

/**
 * The most values one sample may hold at any point of a model (2^28: 1 GiB in float32), past what the
 * kernels' memory can hold at batch size 1: a config whose shapes grow past it (an UpSampling2D of size
 * 10^5, a dilation that pads a 28×28 input to 10^5×10^5) is refused when the model is built, not when
 * its first forward asks for the memory.
 */
export const MAX_SAMPLE_VALUES = 2 ** 28;

/** Throw a ShapeError naming `what` when a sample of `shape` would hold more than MAX_SAMPLE_VALUES values. */
export function checkSampleSize(what: string, shape: readonly number[], role = "outputs samples of shape"): void {
  const size = shapeSize(shape);
  if (!(size <= MAX_SAMPLE_VALUES))
    throw new ShapeError(
      `${what}: ${role} ${formatShape(shape)}, ${size} values, more than the ${MAX_SAMPLE_VALUES} (2^28) ` +
        `handprop allows per sample`,
    );
}

/** Validate an option: a positive integer. Errors are thrown when the layer is constructed. */
export function positiveInt(layer: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1) {
    throw new RangeError(`${layer}: ${name} must be a positive integer, got ${String(v)}`);
  }
  return v;
}

export function nonNegativeInt(layer: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`${layer}: ${name} must be a non-negative integer, got ${String(v)}`);
  }
  return v;
}

/** Validate an option: true or false (`fallback` when absent); a config read from a file may hold anything. */
export function booleanOption(layer: string, name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") throw new RangeError(`${layer}: ${name} must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Validate an option: the parameters' dtype (default float32). */
export function dtypeOption(layer: string, v: unknown): DType {
  if (v === undefined || v === null) return "float32";
  if (v !== "float32" && v !== "float64")
    throw new RangeError(`${layer}: dtype must be "float32" or "float64", got ${JSON.stringify(v)}`);
  return v;
}

/** Validate an option: the generator the initial weights are drawn from (default RandomState(0)). */
export function rngOption(layer: string, v: unknown): RandomState {
  if (v === undefined || v === null) return new RandomState(0);
  if (!(v instanceof RandomState))
    throw new TypeError(`${layer}: rng must be a RandomState, got ${JSON.stringify(v)?.slice(0, 80) ?? typeof v}`);
  return v;
}

/** Validate an option: a finite number. */
export function finiteNumber(layer: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v))
    throw new RangeError(`${layer}: ${name} must be a finite number, got ${String(v)}`);
  return v;
}

/** Validate an option: one of a few strings (the error lists them). */
export function oneOf<Choice extends string>(
  layer: string,
  name: string,
  v: unknown,
  choices: readonly Choice[],
): Choice {
  if (!choices.includes(v as Choice)) {
    const listed = choices.map((c) => JSON.stringify(c)).join(" or ");
    throw new RangeError(`${layer}: ${name} must be ${listed}, got ${JSON.stringify(v)}`);
  }
  return v as Choice;
}

/**
 * Validate an axis option: an integer axis of the full input (negative counts from the end) other than the
 * batch axis 0, which would mix samples; `batchAxisAdvice` follows "axis 0 is the batch axis" in the error.
 */
export function nonBatchAxis(layer: string, v: unknown, batchAxisAdvice: string): number {
  if (typeof v !== "number" || !Number.isInteger(v))
    throw new RangeError(`${layer}: axis must be an integer, got ${String(v)}`);
  if (v === 0) throw new RangeError(`${layer}: axis 0 is the batch axis${batchAxisAdvice}`);
  return v;
}

/** A pair option given as n or [h, w]. */
export function pair(
  layer: string,
  name: string,
  v: number | readonly [number, number],
  check: (l: string, n: string, x: unknown) => number,
): [number, number] {
  if (typeof v === "number") {
    const x = check(layer, name, v);
    return [x, x];
  }
  if (!Array.isArray(v) || v.length !== 2)
    throw new RangeError(`${layer}: ${name} must be a number or [h, w], got ${JSON.stringify(v)}`);
  return [check(layer, `${name}[0]`, v[0]), check(layer, `${name}[1]`, v[1])];
}
