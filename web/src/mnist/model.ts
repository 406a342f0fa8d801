// Page 2's model: the zoo's LeNet-5 (src/nn/models.ts), moved between the page and the worker as
// config + weights, plus the hook that loads a pretrained model shipped with the page.

import {
  buildModel,
  DIGIT_INPUT_SHAPE,
  layerFromConfig,
  Model,
  modelFromConfig,
  sequentialFromConfig,
  deserializeModel,
  MNIST_STANDARDIZE,
  normalizationFromTraining,
  type NDArray,
  type Normalization,
  type Sequential,
} from "handprop";
import type { ModelSnapshot } from "./protocol.ts";

// Normalization, preprocessing and softmax are the library's (src/data/normalization.ts and
// src/data/digits.ts), the same code `handprop predict` runs.
export { MNIST_STANDARDIZE, type Normalization };
export { digitInput as toInput, softmax } from "handprop";

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

/**
 * Every layer's output for one input, in execution order (outs[k]: the output of model.layers[k]); a
 * graph Model's nodes read the tensors they were applied to. The arrays are the layers' own buffers,
 * valid until their next forward.
 */
export function forwardAll(model: Sequential, x: NDArray): NDArray[] {
  const outs: NDArray[] = [];
  if (model instanceof Model) {
    const ids = new Map(model.nodes.map((n, k) => [n, k]));
    model.nodes.forEach((n) => {
      const ins = n.inputs.map((t) => (t.node === null ? x : outs[ids.get(t.node)!]));
      outs.push(n.layer.forwardInputs(ins, { training: false }));
    });
    return outs;
  }
  let a = x;
  for (const l of model.layers) {
    a = l.forward(a, { training: false });
    outs.push(a);
  }
  return outs;
}

// ---------------------------------------------------------------- pretrained model

export interface Pretrained {
  model: Sequential;
  normalization: Normalization;
  /** What the page says about the model, e.g. "pretrained with handprop train: 98.1% on the test set". */
  label: string;
}

/**
 * The model saved by `handprop train mnist` (src/io/model-format.ts: model.json + weights.bin), when the
 * build found one in web/public/models/lenet5/ (__HANDPROP_PRETRAINED__, set by vite.config.ts);
 * null otherwise, without a request. The input normalization comes from the manifest's
 * training.dataset.normalization (as `handprop train` writes it), MNIST_STANDARDIZE when it records
 * none; an invalid one is an error naming the field, as in `handprop predict`.
 * The model must map (N, 1, 28, 28) to (N, 10) logits. Errors (ModelFormatError, HTTP) are thrown.
 */
export async function loadPretrained(baseUrl: string): Promise<Pretrained | null> {
  if (!__HANDPROP_PRETRAINED__) return null;
  const dir = new URL("models/lenet5/", baseUrl);
  const [jsonRes, binRes] = await Promise.all([fetch(new URL("model.json", dir)), fetch(new URL("weights.bin", dir))]);
  if (!jsonRes.ok) throw new Error(`${jsonRes.url}: HTTP ${jsonRes.status}`);
  if (!binRes.ok) throw new Error(`${binRes.url}: HTTP ${binRes.status}`);
  const [json, bytes] = await Promise.all([jsonRes.text(), binRes.arrayBuffer()]);
  const loaded = deserializeModel(json, new Uint8Array(bytes), undefined, {
    manifest: "models/lenet5/model.json",
    weights: "models/lenet5/weights.bin",
  });
  const model = loaded.model;
  const shapes = model.build(DIGIT_INPUT_SHAPE);
  const last = shapes[shapes.length - 1];
  if (last.length !== 1 || last[0] !== 10)
    throw new Error(`models/lenet5: expected 10 outputs for a 1×28×28 input, got (${last.join(", ")})`);
  const training = loaded.training as { testAccuracy?: unknown; testImages?: unknown } | undefined;
  const { normalization } = normalizationFromTraining(loaded.training, "models/lenet5/model.json");
  const acc = training?.testAccuracy;
  const n = training?.testImages;
  model.setDtype("float32");
  return {
    model,
    normalization,
    label: `pretrained with handprop train${typeof acc === "number" ? `: ${(acc * 100).toFixed(1)}% on ${typeof n === "number" ? n.toLocaleString("en-US") : "the"} MNIST test images` : ""}`,
  };
}
