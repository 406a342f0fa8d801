// Layer configs back to layers: the inverse of Layer.config(), used to rebuild saved models.

import { Conv2D, type Conv2DOptions } from "./conv.ts";
import { Dense, type DenseOptions } from "./dense.ts";
import { Flatten } from "./flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D, type AvgPool2DOptions, type Pool2DOptions } from "./pool.ts";
import { Dropout, type DropoutOptions } from "./dropout.ts";
import { BatchNorm1D, BatchNorm2D, type BatchNormOptions } from "./batchnorm.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, type LeakyReLUOptions, type SoftmaxOptions } from "./activations.ts";
import { ELU, GELU, SiLU, type ELUOptions, type GELUOptions } from "./activations.ts";
import {
  DepthwiseConv2D,
  SeparableConv2D,
  type DepthwiseConv2DOptions,
  type SeparableConv2DOptions,
} from "./depthwise.ts";
import { Conv2DTranspose, type Conv2DTransposeOptions } from "./transpose.ts";
import { UpSampling2D, ZeroPadding2D, type UpSampling2DOptions, type ZeroPadding2DOptions } from "./upsample.ts";
import { GroupNorm, LayerNorm, type GroupNormOptions, type LayerNormOptions } from "./norm.ts";
import { GlobalMaxPool2D, Permute, Reshape, type PermuteOptions, type ReshapeOptions } from "./reshape.ts";
import { Add, Concatenate, Multiply, type ConcatenateOptions } from "./merge.ts";
import { Layer, type LayerConfig } from "./layer.ts";
import type { NDArray } from "../nd/ndarray.ts";
import type { RandomState } from "../nd/random.ts";
import { Sequential, type SequentialConfig } from "./sequential.ts";
import { Model, modelFromConfig } from "./graph.ts";

type Factory = (config: LayerConfig) => Layer;

const builtInFactories: Record<string, Factory> = {
  Conv2D: (c) => new Conv2D(c as unknown as Conv2DOptions),
  Dense: (c) => new Dense(c as unknown as DenseOptions),
  Flatten: () => new Flatten(),
  MaxPool2D: (c) => new MaxPool2D(c as unknown as Pool2DOptions),
  AvgPool2D: (c) => new AvgPool2D(c as unknown as AvgPool2DOptions),
  GlobalAvgPool2D: () => new GlobalAvgPool2D(),
  Dropout: (c) => new Dropout(c as unknown as DropoutOptions),
  BatchNorm2D: (c) => new BatchNorm2D(c as unknown as BatchNormOptions),
  BatchNorm1D: (c) => new BatchNorm1D(c as unknown as BatchNormOptions),
  ReLU: () => new ReLU(),
  LeakyReLU: (c) => new LeakyReLU(c as unknown as LeakyReLUOptions),
  Tanh: () => new Tanh(),
  Sigmoid: () => new Sigmoid(),
  Softmax: (c) => new Softmax(c as unknown as SoftmaxOptions),
  DepthwiseConv2D: (c) => new DepthwiseConv2D(c as unknown as DepthwiseConv2DOptions),
  SeparableConv2D: (c) => new SeparableConv2D(c as unknown as SeparableConv2DOptions),
  Conv2DTranspose: (c) => new Conv2DTranspose(c as unknown as Conv2DTransposeOptions),
  UpSampling2D: (c) => new UpSampling2D(c as unknown as UpSampling2DOptions),
  ZeroPadding2D: (c) => new ZeroPadding2D(c as unknown as ZeroPadding2DOptions),
  LayerNorm: (c) => new LayerNorm(c as unknown as LayerNormOptions),
  GroupNorm: (c) => new GroupNorm(c as unknown as GroupNormOptions),
  GELU: (c) => new GELU(c as unknown as GELUOptions),
  SiLU: () => new SiLU(),
  ELU: (c) => new ELU(c as unknown as ELUOptions),
  Reshape: (c) => new Reshape(c as unknown as ReshapeOptions),
  Permute: (c) => new Permute(c as unknown as PermuteOptions),
  GlobalMaxPool2D: () => new GlobalMaxPool2D(),
  Add: () => new Add(),
  Multiply: () => new Multiply(),
  Concatenate: (c) => new Concatenate(c as unknown as ConcatenateOptions),
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
  if (typeof config !== "object" || typeof config.type !== "string") {
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
    throw new TypeError(`${where} (${config.type}): ${(e as Error).message}`, { cause: e });
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
