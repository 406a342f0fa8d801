// The TF.js Layers format's JSON shapes (model.json, the Keras topology, the weights manifest) and its error.

import { printable } from "../model-format.ts";

export type NDArrayLike = { readonly data: ArrayLike<number> };

/** One entry of a weights manifest: the values are float32, row-major, in TF's layout. */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

export interface TfjsWeightsGroup {
  paths: string[];
  weights: TfjsWeightSpec[];
}

/** The contents of a TF.js Layers model.json. */
export interface TfjsModelJson {
  format: "layers-model";
  generatedBy: string;
  convertedBy: string | null;
  modelTopology: KerasModelTopology;
  weightsManifest: TfjsWeightsGroup[];
  userDefinedMetadata?: Record<string, string>;
}

export interface KerasLayerJson {
  class_name: string;
  config: Record<string, unknown>;
  /** Functional models: the layer's name and the tensors it reads ([[[layer, 0, 0, {}], …]]). */
  name?: string;
  inbound_nodes?: unknown[];
}

export interface KerasModelTopology {
  class_name: "Sequential" | "Model";
  config: { name: string; layers: KerasLayerJson[]; input_layers?: unknown[]; output_layers?: unknown[] };
  keras_version: string;
  backend: string;
}

/**
 * A model in the TensorFlow.js Layers format, in memory: model.json's object and weights.bin's bytes (toTfjsArtifacts,
 * fromTfjsArtifacts).
 */
export interface TfjsArtifacts {
  modelJson: TfjsModelJson;
  /** The concatenated float32 little-endian weights, in manifest order (the contents of weights.bin). */
  weightData: ArrayBuffer;
}

/** A model.json (or weight data) that cannot be read or has no handprop equivalent; says which layer and field. */
export class TfjsFormatError extends Error {
  override name = "TfjsFormatError";
  constructor(message: string, options?: ErrorOptions) {
    super(printable(message), options); // names and values from a file never reach a terminal raw
  }
}

export interface TfjsExportOptions {
  /** Shape of one input sample in handprop's layout, (C, H, W) or (F,) (default: the model's inputShape). */
  inputShape?: readonly number[];
  /** Stored as model.json's userDefinedMetadata (TF.js returns it from model.getUserDefinedMetadata()). */
  metadata?: Readonly<Record<string, string>>;
}
