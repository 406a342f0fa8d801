// Layer configs back to layers: the inverse of Layer.config(), used to rebuild saved models.

import { Conv2D } from "./conv.ts";
import { Dense } from "./dense.ts";
import { Flatten } from "./flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "./pool.ts";
import { Dropout } from "./dropout.ts";
import { BatchNorm1D, BatchNorm2D } from "./batchnorm.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from "./activations.ts";
import { ELU, GELU, SiLU } from "./activations.ts";
import { DepthwiseConv2D, SeparableConv2D } from "./depthwise.ts";
import { Conv2DTranspose } from "./transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "./upsample.ts";
import { GroupNorm, LayerNorm } from "./norm.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "./reshape.ts";
import { Add, Concatenate, Multiply } from "./merge.ts";
import { Layer, type LayerConfig } from "./layer.ts";
import type { NDArray } from "../nd/ndarray.ts";
import type { RandomState } from "../nd/random.ts";
import { Sequential, type SequentialConfig } from "./sequential.ts";
import { Model, modelFromConfig } from "./graph.ts";

type Factory = (config: LayerConfig) => Layer;

/**
 * The factory of a layer built from its config: its options (Layer.config()), which the constructor validates;
 * a layer without options ignores it. (`never`: a constructor taking any options type fits.)
 */
function withOptions(LayerClass: new (opts: never) => Layer): Factory {
  return (config) => new LayerClass(config as never);
}

/** The built-in layer classes, under their types (LAYER_TYPES lists them in this order). */
const builtInLayerClasses: Record<string, new (opts: never) => Layer> = {
  Conv2D,
  Dense,
  Flatten,
  MaxPool2D,
  AvgPool2D,
  GlobalAvgPool2D,
  Dropout,
  BatchNorm2D,
  BatchNorm1D,
  ReLU,
  LeakyReLU,
  Tanh,
  Sigmoid,
  Softmax,
  DepthwiseConv2D,
  SeparableConv2D,
  Conv2DTranspose,
  UpSampling2D,
  ZeroPadding2D,
  LayerNorm,
  GroupNorm,
  GELU,
  SiLU,
  ELU,
  Reshape,
  Permute,
  GlobalMaxPool2D,
  Add,
  Multiply,
  Concatenate,
};

const builtInFactories: Record<string, Factory> = {
  ...Object.fromEntries(
    Object.entries(builtInLayerClasses).map(([type, LayerClass]) => [type, withOptions(LayerClass)]),
  ),
  // models are layers too: nested Sequentials and graph Models
  Sequential: (c) => sequentialFromConfig(c as unknown as SequentialConfig),
  Model: (c) => modelFromConfig(c, layerFromConfig),
};

/** A graph Model from Model.config() (also accepted by sequentialFromConfig). */
export function graphModelFromConfig(config: unknown): Model {
  return modelFromConfig(config, layerFromConfig);
}

const factories = new Map<string, Factory>(Object.entries(builtInFactories));
const builtIn: ReadonlySet<string> = new Set(factories.keys());
const layerTypes: string[] = [...factories.keys()];
/** Every layer type layerFromConfig knows: the built-in ones, then those added with registerLayer. */
export const LAYER_TYPES: readonly string[] = layerTypes;

/** How `handprop gradcheck` checks a registered layer: a fresh instance and an input, drawn from rng. */
export type LayerCheckFactory = (rng: RandomState) => { layer: Layer; input: NDArray; config?: string };

const customChecks = new Map<string, LayerCheckFactory>();

/**
 * Make a user-defined layer type known, so that models holding it load (layerFromConfig calls
 * `factory(config)` with the layer's own config()) and, with `gradcheck`, so that the
 * `handprop gradcheck` suite checks its backward like a built-in layer's. Registering a type again
 * replaces it; built-in types cannot be replaced.
 */
export function registerLayer(
  type: string,
  factory: (config: LayerConfig) => Layer,
  opts: { gradcheck?: LayerCheckFactory } = {},
): void {
  if (typeof type !== "string" || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(type)) {
    throw new TypeError(
      `registerLayer: the type must be a name of letters, digits, "_", "." or "-" (starting with a letter or "_"), got ${JSON.stringify(type)}`,
    );
  }
  if (builtIn.has(type))
    throw new TypeError(`registerLayer: "${type}" is a built-in layer type; give your layer another type name`);
  if (typeof factory !== "function")
    throw new TypeError(`registerLayer("${type}"): factory must be a function (config) => Layer`);
  if (opts.gradcheck !== undefined && typeof opts.gradcheck !== "function")
    throw new TypeError(`registerLayer("${type}"): gradcheck must be a function (rng) => {layer, input}`);
  factories.set(type, factory);
  if (!layerTypes.includes(type)) layerTypes.push(type);
  if (opts.gradcheck) customChecks.set(type, opts.gradcheck);
  else customChecks.delete(type);
}

/** Forget a type added with registerLayer (built-in types stay). Returns whether it was registered. */
export function unregisterLayer(type: string): boolean {
  if (builtIn.has(type) || !factories.delete(type)) return false;
  layerTypes.splice(layerTypes.indexOf(type), 1);
  customChecks.delete(type);
  return true;
}

/** The gradient checks registered with registerLayer, in registration order. */
export function registeredLayerChecks(): [string, LayerCheckFactory][] {
  return [...customChecks.entries()];
}

/** Build a layer from its config ({type, ...options}); unknown types are named in the error. */
export function layerFromConfig(config: LayerConfig, where = "layer"): Layer {
  if (typeof config !== "object" || (config as LayerConfig | null) === null || typeof config.type !== "string") {
    throw new TypeError(
      `${where}: a layer config must be an object with a string "type", got ${JSON.stringify(config)}`,
    );
  }
  const make = factories.get(config.type);
  if (!make) throw new TypeError(`${where}: unknown layer type "${config.type}" (known: ${LAYER_TYPES.join(", ")})`);
  let layer: Layer;
  try {
    layer = make(config);
  } catch (e) {
    // a registered factory may throw anything; its message (or the value itself) says what was wrong
    const message = e instanceof Error ? e.message : String(e);
    throw new TypeError(`${where} (${config.type}): ${message}`, { cause: e });
  }
  if (!(layer instanceof Layer))
    throw new TypeError(`${where} (${config.type}): the registered factory did not return a Layer`);
  if (layer.type !== config.type)
    throw new TypeError(
      `${where}: the factory for "${config.type}" built a layer of type "${layer.type}"; its config() would not load back`,
    );
  return layer;
}

/**
 * Rebuild a Sequential model (weights freshly initialised) from Sequential.config(), or a graph Model
 * from Model.config() (type "Model").
 */
export function sequentialFromConfig(config: {
  type?: string;
  name?: string;
  inputShape?: number[] | null;
  layers: LayerConfig[];
}): Sequential {
  if (config.type === "Model") return modelFromConfig(config, layerFromConfig);
  if (!Array.isArray(config.layers)) throw new TypeError('model config: "layers" must be an array');
  const layers = config.layers.map((c, i) => layerFromConfig(c, `layer ${i}`));
  return new Sequential(layers, {
    ...(config.name ? { name: config.name } : {}),
    ...(config.inputShape ? { inputShape: config.inputShape } : {}),
  });
}
