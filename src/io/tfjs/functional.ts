// TF.js import of functional (graph) models: Keras inbound_nodes → a handprop graph Model.

import type { Layer, SymbolicTensor } from "../../nn/layer.ts";
import { Input, Model } from "../../nn/graph.ts";
import { Add, Concatenate, Multiply } from "../../nn/merge.ts";
import { TfjsFormatError } from "./types.ts";
import { NHWC_TO_NCHW_AXIS } from "./layout.ts";
import { type Json } from "./weights.ts";
import { LayerReader, inputShapeOf } from "./reader.ts";

/** The importer's state around one Keras layer (the current tensor's handprop shape, …), shared with fromTfjsArtifacts. */
export interface ImportState {
  shape: number[];
  flattened: readonly number[] | null;
  pad: { r: LayerReader; tb: [number, number]; lr: [number, number] } | null;
  readonly out: Layer[];
  finish(): void;
}

/**
 * A functional TF.js/Keras 2 model ("Model"/"Functional": layers listed in order, each with
 * inbound_nodes [[[layer, 0, 0, {}], …]]) as a handprop graph Model: each Keras layer becomes the handprop
 * layers processLayer makes for it (a ZeroPadding2D stays a layer: nothing to fold it into), applied to
 * the tensors it reads; Add, Multiply and Concatenate (its NHWC axis mapped to NCHW) merge. One input and
 * one output.
 */
export function functionalModel(
  config: Json,
  rawLayers: unknown[],
  readers: LayerReader[],
  name: string | null,
  processLayer: (r: LayerReader) => void,
  st: ImportState,
): Model {
  interface Tensor {
    sym: SymbolicTensor;
    shape: number[];
    flattened: readonly number[] | null;
  }
  const tensors = new Map<string, Tensor>();
  let input: SymbolicTensor | null = null;
  const apply = (
    r: LayerReader,
    layer: Layer,
    xs: SymbolicTensor | SymbolicTensor[],
    nodeName: string,
  ): SymbolicTensor => {
    try {
      return layer.apply(xs, nodeName);
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
  };
  const inboundOf = (r: LayerReader, raw: Json): Tensor[] => {
    const nodes = raw.inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length !== 1 || !Array.isArray(nodes[0]) || nodes[0].length === 0) {
      r.fail(
        "inbound_nodes",
        "must be one call [[[layer, 0, 0, {}], …]] (each layer applied once; Keras 3's form is not supported)",
      );
    }
    return (nodes[0] as unknown[]).map((t) => {
      if (!Array.isArray(t) || typeof t[0] !== "string" || t[1] !== 0 || t[2] !== 0) {
        return r.fail(
          "inbound_nodes",
          `has the entry ${JSON.stringify(t)?.slice(0, 80)}; expected [layer name, 0, 0, {}]`,
        );
      }
      const found = tensors.get(t[0]);
      if (!found)
        return r.fail(
          "inbound_nodes",
          `reads "${t[0]}", which no earlier layer produces (layers must be listed in execution order)`,
        );
      return found;
    });
  };
  const sameOrder = (a: readonly number[] | null, b: readonly number[] | null) =>
    a === b || (a !== null && b !== null && a.length === b.length && a.every((v, i) => v === b[i]));

  readers.forEach((r, i) => {
    const raw = rawLayers[i] as Json;
    if (r.className === "InputLayer") {
      if (input !== null)
        throw new TfjsFormatError(`${r.where}: a second input; only models with one input are supported`);
      const shape = inputShapeOf(r);
      try {
        input = Input(shape, { name: r.name });
      } catch (e) {
        throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
      }
      tensors.set(r.name, { sym: input, shape, flattened: null });
      return;
    }
    const ins = inboundOf(r, raw);
    if (r.className === "Add" || r.className === "Multiply" || r.className === "Concatenate") {
      r.float32();
      if (ins.length < 2) r.fail("inbound_nodes", `lists ${ins.length} input; a merge takes two or more`);
      const flat = ins[0].flattened;
      if (!ins.every((t) => sameOrder(t.flattened, flat)) || (r.className === "Concatenate" && flat !== null)) {
        throw new TfjsFormatError(
          `${r.where}: merges flattened images (NHWC order) handprop would flatten differently; merge before the Flatten`,
        );
      }
      let layer: Layer;
      if (r.className === "Add") layer = new Add();
      else if (r.className === "Multiply") layer = new Multiply();
      else {
        const rank = ins[0].shape.length + 1;
        const axis = r.config.axis ?? -1;
        if (typeof axis !== "number" || !Number.isInteger(axis) || axis <= -rank || axis >= rank || axis === 0) {
          r.fail("axis", `is ${JSON.stringify(axis)}; expected one non-batch axis of a rank-${rank} tensor`);
        }
        const a = (axis as number) < 0 ? (axis as number) + rank : (axis as number);
        layer = new Concatenate({ axis: rank === 4 ? NHWC_TO_NCHW_AXIS[a] : a });
      }
      const sym = apply(
        r,
        layer,
        ins.map((t) => t.sym),
        r.name,
      );
      tensors.set(r.name, { sym, shape: sym.shape.slice(), flattened: flat });
      return;
    }
    if (ins.length !== 1)
      r.fail("inbound_nodes", `lists ${ins.length} inputs; only Add, Multiply and Concatenate take several`);
    st.shape = ins[0].shape.slice();
    st.flattened = ins[0].flattened;
    st.pad = null;
    st.out.length = 0;
    processLayer(r);
    let sym = ins[0].sym;
    st.out.forEach((l, j) => {
      sym = apply(r, l, sym, j === st.out.length - 1 ? r.name : `${r.name}_${j}`);
    });
    tensors.set(r.name, { sym, shape: st.shape.slice(), flattened: st.flattened });
  });

  const single = (field: "input_layers" | "output_layers"): Tensor => {
    const list = config[field];
    const entry: unknown = Array.isArray(list) && list.length === 1 ? list[0] : null;
    const layerName: unknown = Array.isArray(entry) ? entry[0] : null;
    const t = typeof layerName === "string" ? tensors.get(layerName) : undefined;
    if (!t)
      throw new TfjsFormatError(
        `model.json: "${field}" must name one layer of the model, got ${JSON.stringify(list)?.slice(0, 80)}`,
      );
    return t;
  };
  const inputT = single("input_layers");
  const outputT = single("output_layers");
  st.finish();
  if (inputT.sym !== input || input === null)
    throw new TfjsFormatError('model.json: "input_layers" must name the InputLayer');
  if (outputT.sym === input)
    throw new TfjsFormatError(
      "model.json: the model has no layers handprop can run (only InputLayer/linear activations)",
    );
  try {
    return new Model({ inputs: input, outputs: outputT.sym, name: name ?? "model" });
  } catch (e) {
    throw new TfjsFormatError(`model.json: ${(e as Error).message}`, { cause: e });
  }
}
