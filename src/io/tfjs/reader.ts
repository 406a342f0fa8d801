// Reading one Keras layer's config (errors name the layer and the field), its fused activation, the layer list.

import type { Layer } from "../../nn/layer.ts";
import { ELU, GELU, ReLU, SiLU, Sigmoid, Softmax, Tanh } from "../../nn/activations.ts";
import { TfjsFormatError } from "./types.ts";
import { isObject, type Json } from "./weights.ts";

/** Reads one Keras layer's config, with errors naming the layer and the field. */
export class LayerReader {
  readonly where: string;
  constructor(
    readonly index: number,
    readonly className: string,
    readonly name: string,
    readonly config: Json,
  ) {
    this.where = `model.json: layer ${index} "${name}" (${className})`;
  }

  fail(field: string, message: string): never {
    throw new TfjsFormatError(`${this.where}: field "${field}" ${message}`);
  }

  has(field: string): boolean {
    return this.config[field] !== undefined && this.config[field] !== null;
  }

  number(field: string, fallback?: number): number {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(field, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.number(field, fallback);
    if (!Number.isInteger(v) || v < 1) this.fail(field, `must be a positive integer, got ${v}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  string(field: string, fallback: string): string {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "string") this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** n or [a, b] → [a, b] of positive integers. */
  pair(field: string, fallback?: [number, number]): [number, number] {
    const v = this.config[field] ?? fallback;
    const p = typeof v === "number" ? [v, v] : v;
    if (
      !Array.isArray(p) ||
      p.length !== 2 ||
      !p.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 1)
    ) {
      this.fail(field, `must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
    }
    return [p[0] as number, p[1] as number];
  }

  padding(): "same" | "valid" {
    const p = this.string("padding", "valid");
    if (p !== "same" && p !== "valid")
      this.fail("padding", `is ${JSON.stringify(p)}; only "valid" and "same" are supported`);
    return p;
  }

  channelsLast(): void {
    const f = this.config.data_format;
    if (f !== undefined && f !== null && f !== "channels_last")
      this.fail("data_format", `is ${JSON.stringify(f)}; only "channels_last" is supported`);
  }

  /** Reject a field unless it is absent or has one of the given harmless values. */
  only(field: string, ...allowed: unknown[]): void {
    const v = this.config[field];
    if (v !== undefined && !allowed.some((a) => a === v))
      this.fail(
        field,
        `= ${JSON.stringify(v)} is not supported (expected ${allowed.map((a) => JSON.stringify(a)).join(" or ")})`,
      );
  }

  /** Layers compute in float32: a string dtype or a Keras 3 DTypePolicy naming float32. */
  float32(): void {
    const d = this.config.dtype;
    const name = isObject(d) && isObject(d.config) ? d.config.name : d;
    if (name !== undefined && name !== null && name !== "float32")
      this.fail("dtype", `is ${JSON.stringify(name)}; only "float32" layers are supported`);
  }
}

/** A fused activation ("activation" of Conv2D/Dense/Activation) as a handprop layer, null for linear. */
export function activationLayer(r: LayerReader, sampleRank: number): Layer | null {
  const a = r.string("activation", "linear");
  switch (a) {
    case "linear":
      return null;
    case "relu":
      return new ReLU();
    case "tanh":
      return new Tanh();
    case "sigmoid":
      return new Sigmoid();
    case "softmax": // over TF's last axis: the channels of an image, i.e. handprop's axis 1
      return new Softmax({ axis: sampleRank === 3 ? 1 : -1 });
    case "gelu": // x·Φ(x) with erf, as tfjs-layers' and Keras's default
      return new GELU();
    case "gelu_new": // tfjs-layers' name for the tanh approximation
      return new GELU({ approximate: "tanh" });
    case "swish": // x·sigmoid(x): TF.js's name, Keras 3's "silu"
    case "silu":
      return new SiLU();
    case "elu": // the activation function has alpha 1 (an ELU layer can have another)
      return new ELU();
    default:
      return r.fail(
        "activation",
        `is ${JSON.stringify(a)}; supported: linear, relu, tanh, sigmoid, softmax, gelu, gelu_new, swish, silu, elu`,
      );
  }
}

/** The Keras Sequential's layer list and name, whatever wrapper the topology comes in. */
export function sequentialLayers(topology: unknown): {
  name: string | null;
  layers: unknown[];
  functional: Json | null;
} {
  if (!isObject(topology))
    throw new TfjsFormatError(`model.json: "modelTopology" must be an object, got ${JSON.stringify(topology)}`);
  const top = isObject(topology.model_config) ? topology.model_config : topology;
  const cls = top.class_name;
  if (cls === "Model" || cls === "Functional") {
    const config = top.config;
    if (!isObject(config) || !Array.isArray(config.layers))
      throw new TfjsFormatError(`model.json: the ${cls}'s "config" must have a "layers" array`);
    return {
      name: typeof config.name === "string" ? config.name : null,
      layers: config.layers as unknown[],
      functional: config,
    };
  }
  if (cls !== "Sequential") {
    throw new TfjsFormatError(
      `model.json: modelTopology class_name is ${JSON.stringify(cls)}; only Sequential and functional ("Model"/"Functional") models are supported`,
    );
  }
  const config = top.config;
  if (Array.isArray(config)) return { name: null, layers: config as unknown[], functional: null }; // Keras ≤ 2.2: the layer list itself
  if (!isObject(config) || !Array.isArray(config.layers))
    throw new TfjsFormatError('model.json: the Sequential\'s "config" must have a "layers" array');
  return {
    name: typeof config.name === "string" ? config.name : null,
    layers: config.layers as unknown[],
    functional: null,
  };
}

/** [null, H, W, C] → (C, H, W), [null, F] → (F,). */
export function inputShapeOf(r: LayerReader): number[] {
  const field = r.has("batch_input_shape") ? "batch_input_shape" : "batch_shape";
  const s = r.config[field];
  if (s === undefined || s === null)
    return r.fail("batch_input_shape", "is missing: the first layer must give the input shape");
  if (
    !Array.isArray(s) ||
    (s.length !== 4 && s.length !== 2) ||
    !s.slice(1).every((d) => typeof d === "number" && Number.isInteger(d) && d >= 1)
  ) {
    return r.fail(field, `must be [null, H, W, C] or [null, F] with fixed positive sizes, got ${JSON.stringify(s)}`);
  }
  const d = s as number[];
  return d.length === 4 ? [d[3], d[1], d[2]] : [d[1]];
}
