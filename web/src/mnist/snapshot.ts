// Page 2's model as it crosses the thread boundary (config + weights, protocol.ts's ModelSnapshot): kept
// apart from model.ts, which also holds the build-time pretrained-model hook, so Node code (the speed
// test) can import it without the page's compile-time constants.

import { buildModel, layerFromConfig, modelFromConfig, sequentialFromConfig, type Sequential } from "handprop";
import type { ModelSnapshot } from "./protocol.ts";

export const MODEL_NAME = "lenet5";

/** A freshly initialised LeNet-5, weights drawn from RandomState(seed). */
export function freshModel(seed: number): Sequential {
  return buildModel(MODEL_NAME, { seed });
}

/** Config plus copies of every parameter (trainable or not), in params() order. */
export function snapshot(model: Sequential): ModelSnapshot {
  return { config: model.config(), weights: model.params().map((p) => Float32Array.from(p.value.data)) };
}

/** Copy weights (params() order) into a model, checking counts and sizes. */
export function setWeights(model: Sequential, weights: readonly Float32Array[]): void {
  const params = model.params();
  if (params.length !== weights.length)
    throw new RangeError(`setWeights: model has ${params.length} parameters, got ${weights.length} arrays`);
  params.forEach((p, i) => {
    if (p.value.size !== weights[i].length)
      throw new RangeError(`setWeights: parameter ${p.name} has ${p.value.size} values, got ${weights[i].length}`);
    p.value.data.set(weights[i]);
  });
}

export function fromSnapshot(s: ModelSnapshot): Sequential {
  // a graph model's config carries its wiring (type "Model", nodes): rebuild it as a graph
  const model = s.config.type === "Model" ? modelFromConfig(s.config, layerFromConfig) : sequentialFromConfig(s.config);
  setWeights(model, s.weights);
  return model;
}
