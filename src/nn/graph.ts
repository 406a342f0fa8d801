// Functional models: layers applied to symbolic tensors form a directed acyclic graph, and a Model runs
// it (Keras's functional API). derivation.md §5.7.
//
//   const x = Input([16, 8, 8]);
//   const h = new ReLU().apply(new Conv2D({ outChannels: 16, kernelSize: 3, padding: "same" }).apply(x));
//   const y = new Add().apply([x, h]);                               // a residual connection
//   const model = new Model({ inputs: x, outputs: y, seed: 0 });
//
// Forward runs the nodes in a topological order (a depth-first post-order from the output, so each node
// runs after every node it reads); backward runs them in reverse, and a tensor read by several nodes gets
// the SUM of the gradients they return — §0's fan-out rule, du = Σ_{v reads u} dx_u^(v). Shapes are
// checked when a layer is applied (Layer.apply), naming the node and both shapes.
//
// Model extends Sequential so that it trains, evaluates, predicts, counts and saves with the very same
// code (fit/trainBatch/evaluate/predict are Sequential's, which only call forward, backward, zeroGrad and
// the layers' parameters); it overrides how the layers are connected. Its `layers` are the graph's layers
// in execution order, so parameter names ("<position>.<name>") and model files work unchanged.

import { formatShape, type DType, type NDArray } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { kernels, setInternalOutputs } from "../kernels/backend.ts";
import {
  Layer,
  ShapeError,
  SymbolicTensor,
  checkSampleSize,
  type BackwardOptions,
  type ForwardOptions,
  type GraphNode,
  type LayerConfig,
} from "./layer.ts";
import { Sequential, checkLayersRunOnce, type SequentialConfig } from "./sequential.ts";

/** A model input: the shape of one sample (batch axis excluded), e.g. [1, 28, 28]. */
export function Input(shape: readonly number[], opts: { name?: string } = {}): SymbolicTensor {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new RangeError(
      `Input: shape must be a non-empty array of positive integers (one sample, no batch axis), ` +
        `got ${JSON.stringify(shape)}`,
    );
  }
  checkSampleSize("Input", shape, "takes samples of shape");
  const name = opts.name ?? "input";
  if (typeof name !== "string" || name === "") throw new TypeError("Input: name must be a non-empty string");
  return new SymbolicTensor(shape.slice(), null, name);
}

export interface ModelOptions {
  /** The Input the graph starts from. */
  inputs: SymbolicTensor;
  /** The tensor the model returns (the output of the last layer applied). */
  outputs: SymbolicTensor;
  name?: string;
  /** Re-draw every layer's weights, in execution order, from RandomState(seed). */
  seed?: number;
  dtype?: DType;
}

/** Model.config(): Sequential's fields (layers in execution order) plus how they are connected. */
export interface ModelConfig extends SequentialConfig {
  inputName: string;
  /** One per layer, same order: the node's name and the names of the tensors it reads (a node's output tensor has its name). */
  nodes: { name: string; inputs: string[] }[];
  output: string;
}

/**
 * The nodes the output depends on, each after all the nodes it reads: an iterative depth-first
 * post-order from the output (inputs visited in order, so the order is deterministic).
 */
function executionOrder(input: SymbolicTensor, output: SymbolicTensor): GraphNode[] {
  const order: GraphNode[] = [];
  const done = new Set<GraphNode>();
  const checkInput = (t: SymbolicTensor) => {
    if (t !== input)
      throw new RangeError(
        `Model: the output depends on Input '${t.name}' ${formatShape(t.shape)}, ` +
          `which is not the model's input '${input.name}' (models have one input)`,
      );
  };
  if (output.node === null) {
    checkInput(output);
    throw new RangeError("Model: the output is the input itself: apply at least one layer");
  }
  const stack: { node: GraphNode; next: number }[] = [{ node: output.node, next: 0 }];
  const onStack = new Set<GraphNode>([output.node]);
  while (stack.length > 0) {
    const top = stack[stack.length - 1];
    if (top.next < top.node.inputs.length) {
      const t = top.node.inputs[top.next++];
      if (t.node === null) checkInput(t);
      else if (!done.has(t.node) && !onStack.has(t.node)) {
        stack.push({ node: t.node, next: 0 });
        onStack.add(t.node);
      }
    } else {
      stack.pop();
      onStack.delete(top.node);
      done.add(top.node);
      order.push(top.node);
    }
  }
  return order;
}

/** The backward options of a node whose dx another node reads: one object, not a default `{}` per call. */
const WANT_DX: BackwardOptions = Object.freeze({});

/**
 * A functional graph of layers (Keras's functional API): layers applied to symbolic tensors from `Input`, with branches
 * and merges (`Add`, `Multiply`, `Concatenate`). Trains, evaluates, predicts, saves and loads like a Sequential.
 */
export class Model extends Sequential {
  override readonly type: string = "Model";
  /** The graph's nodes in execution order; nodes[k].layer === layers[k]. */
  readonly nodes: readonly GraphNode[];
  readonly input: SymbolicTensor;
  readonly output: SymbolicTensor;
  // Tensors are numbered: 0 the model input, k + 1 the output of nodes[k].
  private readonly inputIds: number[][];
  // per node, kept so that a training step allocates nothing: its input list (refilled by each forward),
  // and whether it reads only the model's input (backward then passes needDx on)
  private readonly nodeInputs: NDArray[][];
  private readonly readsOnlyInput: boolean[];
  private values: NDArray[] = [];
  private grads: (NDArray | null)[] = [];
  private sums: (NDArray | null)[] = []; // reused buffers for the gradients of tensors read more than once

  /**
   * The graph from `opts.inputs` (one `Input`) to `opts.outputs` (one tensor); shapes were checked as layers were
   * applied.
   */
  constructor(opts: ModelOptions) {
    if (
      typeof opts !== "object" ||
      opts === null ||
      !(opts.inputs instanceof SymbolicTensor) ||
      !(opts.outputs instanceof SymbolicTensor)
    ) {
      throw new TypeError("Model: expected {inputs, outputs}: an Input and the tensor a layer's apply() returned");
    }
    const nodes = executionOrder(opts.inputs, opts.outputs);
    // apply() refuses a layer applied in two nodes; this also one inside a Sequential or Model node (at any
    // depth) — and its second backward would replace the dx that accumulate still borrows
    checkLayersRunOnce(
      "Model",
      nodes.map((n) => [n.layer, `node '${n.name}'`]),
    );
    super(
      nodes.map((n) => n.layer),
      { name: opts.name ?? "model" },
    );
    this.nodes = nodes;
    this.input = opts.inputs;
    this.output = opts.outputs;
    const ids = new Map<GraphNode, number>(nodes.map((n, k) => [n, k + 1]));
    const seen = new Map<string, string>([[this.input.name, "the input"]]);
    for (const n of nodes) {
      const other = seen.get(n.name);
      if (other !== undefined)
        throw new RangeError(
          `Model: two tensors are named '${n.name}' (${other} and a ` +
            `${n.layer.type} node): give the nodes distinct names`,
        );
      seen.set(n.name, `a ${n.layer.type} node`);
    }
    this.inputIds = nodes.map((n) => n.inputs.map((t) => (t.node === null ? 0 : ids.get(t.node)!)));
    this.nodeInputs = this.inputIds.map(() => []);
    this.readsOnlyInput = this.inputIds.map((list) => list.every((id) => id === 0));
    this.build(this.input.shape);
    if (opts.seed !== undefined) this.initialize(new RandomState(opts.seed));
    if (opts.dtype) this.setDtype(opts.dtype);
  }

  /** Check every node's shapes for one input sample shape; returns each layer's output shape (execution order). */
  override build(inputShape: readonly number[]): number[][] {
    const shapes: number[][] = [inputShape.slice()];
    checkSampleSize(this.name, inputShape, "takes samples of shape");
    this.nodes.forEach((n, k) => {
      const ins = this.inputIds[k].map((id) => shapes[id]);
      try {
        shapes.push(n.layer.inferShape(ins));
      } catch (e) {
        if (!(e instanceof RangeError || e instanceof TypeError)) throw e;
        const given = n.inputs.map((t, j) => `'${t.name}' ${formatShape(ins[j])}`).join(", ");
        throw new ShapeError(`${this.name}: node '${n.name}' (${n.layer.type}) applied to ${given}: ` + e.message, {
          cause: e,
        });
      }
      // outside the try: its message names the node once (the wrapper above would name it twice)
      checkSampleSize(`${this.name}: ${n.layer.describe()}`, shapes[shapes.length - 1]);
    });
    this.inputShape = inputShape.slice();
    return shapes.slice(1);
  }

  // Forward: every node in execution order, each reading the tensors it was applied to.
  override forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    const s = this.inputShape!;
    let fits = x.ndim === s.length + 1;
    for (let i = 0; fits && i < s.length; i++) fits = x.shape[i + 1] === s[i];
    if (!fits) {
      throw new ShapeError(`${this.name}: expected input of shape (N, ${s.join(", ")}), got ${formatShape(x.shape)}`);
    }
    const v = this.values;
    v[0] = x;
    const K = this.nodes.length;
    const outer = setInternalOutputs(true); // see Sequential.owned
    try {
      for (let k = 0; k < K; k++) {
        const ids = this.inputIds[k];
        const xs = this.nodeInputs[k];
        for (let j = 0; j < ids.length; j++) xs[j] = v[ids[j]];
        v[k + 1] = this.nodes[k].layer.forwardInputs(xs, opts);
      }
    } finally {
      setInternalOutputs(outer);
    }
    return outer ? v[K] : this.owned(0, v[K]);
  }

  // Backward (derivation.md §5.7): nodes in reverse execution order, so each runs after every reader of
  // its output has contributed; a tensor read r > 1 times gets the sum of the r gradients (§0 fan-out).
  // opts.needDx = false (nobody reads the model's dx) reaches the nodes that read only the model's input.
  override backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    const K = this.nodes.length;
    const grads = this.grads;
    grads.length = K + 1;
    grads.fill(null);
    grads[K] = dy;
    const outer = setInternalOutputs(true); // see Sequential.owned
    try {
      for (let k = K - 1; k >= 0; k--) {
        const g = grads[k + 1];
        const { layer } = this.nodes[k];
        if (g === null) throw new Error(`${this.name}: node '${this.nodes[k].name}' received no ` + `gradient`); // unreachable: every node leads to the output
        const ids = this.inputIds[k];
        const dxs = layer.backwardInputs(g, this.readsOnlyInput[k] ? opts : WANT_DX);
        for (let j = 0; j < ids.length; j++) this.accumulate(ids[j], dxs[j]);
      }
    } finally {
      setInternalOutputs(outer);
    }
    return outer || opts.needDx === false ? grads[0]! : this.owned(1, grads[0]!); // needDx false: nobody reads it
  }

  /**
   * du += dx for tensor `id` (§0 fan-out). The first gradient to arrive is borrowed as is (backward never
   * writes into the arrays it is given or returns, and each layer runs once, so it stays valid); with
   * several readers the second is summed with it in one pass into a buffer reused from step to step, and
   * any later one is added there — the same sums, in the same order, as copying the first and adding.
   */
  private accumulate(id: number, dx: NDArray): void {
    const first = this.grads[id];
    if (first === null) {
      this.grads[id] = dx;
      return;
    }
    const own = this.sums[id] ?? null;
    if (first !== own) {
      const sum = (this.sums[id] = kernels.outputBuffer(own, first.shape, first.dtype));
      kernels.add(first.data, dx.data, sum.data);
      this.grads[id] = sum;
    } else kernels.add(own.data, dx.data, own.data);
  }

  /** A Keras-style table with a "Connected to" column: where the graph branches and merges. */
  override summary(inputShape: readonly number[] | null = this.inputShape): string {
    if (!inputShape) throw new Error(`${this.name}.summary: the input shape is unknown`);
    const shapes = this.build(inputShape);
    const fmt = (n: number) => n.toLocaleString("en-US");
    const rows: string[][] = [[`${this.input.name} (Input)`, `(None, ${inputShape.join(", ")})`, "0", ""]];
    this.nodes.forEach((n, k) => {
      const count = n.layer.params().reduce((s, p) => s + p.value.size, 0);
      rows.push([
        `${n.name} (${n.layer.type})`,
        `(None, ${shapes[k].join(", ")})`,
        fmt(count),
        n.inputs.map((t) => t.name).join(", "),
      ]);
    });
    const widths = [
      Math.max(29, ...rows.map((r) => r[0].length + 2)),
      Math.max(22, ...rows.map((r) => r[1].length + 2)),
      12,
    ];
    const line = (cells: string[]) =>
      " " +
      cells
        .map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c))
        .join("")
        .trimEnd();
    const total = widths.reduce((a, b) => a + b, 1) + Math.max(12, ...rows.map((r) => r[3].length));
    return this.summaryFrame(line(["Layer (type)", "Output Shape", "Param #", "Connected to"]), rows.map(line), total);
  }

  override config(): ModelConfig {
    return {
      type: "Model",
      name: this.name,
      inputShape: this.inputShape,
      inputName: this.input.name,
      layers: this.layers.map((l) => l.config()),
      nodes: this.nodes.map((n) => ({ name: n.name, inputs: n.inputs.map((t) => t.name) })),
      output: this.nodes[this.nodes.length - 1].name,
    };
  }

  override toJSON(): ModelConfig {
    return this.config();
  }
}

/**
 * Rebuild a Model (weights freshly drawn) from Model.config(); `makeLayer` turns a layer config into a
 * layer (the registry's layerFromConfig). Errors name the field.
 */
export function modelFromConfig(config: unknown, makeLayer: (config: LayerConfig, where: string) => Layer): Model {
  const c = config as Partial<ModelConfig> | null;
  if (typeof c !== "object" || c === null) throw new TypeError("model config: expected an object");
  if (!Array.isArray(c.layers)) throw new TypeError('model config: "layers" must be an array');
  if (!Array.isArray(c.nodes) || c.nodes.length !== c.layers.length) {
    throw new TypeError(
      `model config: "nodes" must be an array with one entry per layer (${c.layers.length}), got ` +
        JSON.stringify(c.nodes)?.slice(0, 80),
    );
  }
  if (!Array.isArray(c.inputShape)) throw new TypeError('model config: a graph Model needs "inputShape"');
  if (typeof c.inputName !== "string") throw new TypeError('model config: "inputName" must be a string');
  if (typeof c.output !== "string") throw new TypeError('model config: "output" must be a string');
  const input = Input(c.inputShape, { name: c.inputName });
  const tensors = new Map<string, SymbolicTensor>([[c.inputName, input]]);
  const layers = c.layers;
  c.nodes.forEach((n, i) => {
    const where = `model.nodes[${i}]`;
    if (
      typeof n !== "object" ||
      n === null ||
      typeof n.name !== "string" ||
      !Array.isArray(n.inputs) ||
      n.inputs.length === 0
    ) {
      throw new TypeError(
        `${where}: expected {"name": string, "inputs": [tensor names]}, got ` + JSON.stringify(n)?.slice(0, 80),
      );
    }
    if (tensors.has(n.name)) throw new TypeError(`${where}: the name '${n.name}' is used twice`);
    const inputs = n.inputs.map((name, j) => {
      const t = typeof name === "string" ? tensors.get(name) : undefined;
      if (!t)
        throw new TypeError(
          `${where}.inputs[${j}]: unknown tensor ${JSON.stringify(name)} (a node may read ` +
            `the input or earlier nodes only)`,
        );
      return t;
    });
    tensors.set(n.name, makeLayer(layers[i], `node '${n.name}'`).apply(inputs, n.name));
  });
  const output = tensors.get(c.output);
  if (!output) throw new TypeError(`model config: "output" names no node: ${JSON.stringify(c.output)}`);
  const model = new Model({ inputs: input, outputs: output, name: typeof c.name === "string" ? c.name : "model" });
  const order = model.nodes.map((n) => n.name);
  if (order.length !== c.nodes.length || order.some((name, i) => name !== c.nodes![i].name)) {
    throw new TypeError(
      `model config: "nodes" must list every node in execution order (${order.join(", ")}), got ` +
        c.nodes.map((n) => n.name).join(", "),
    );
  }
  return model;
}
