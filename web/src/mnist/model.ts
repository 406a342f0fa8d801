// Page 2's model: the zoo's LeNet-5 (src/nn/models.ts), moved between the page and the worker as
// config + weights (snapshot.ts), plus the hook that loads a pretrained model shipped with the page.

import {
  DIGIT_INPUT_SHAPE,
  Model,
  deserializeModel,
  MNIST_STANDARDIZE,
  normalizationFromTraining,
  type NDArray,
  type Normalization,
  type Sequential,
} from "handprop";

// Normalization, preprocessing and softmax are the library's (src/data/normalization.ts and
// src/data/digits.ts), the same code `handprop predict` runs.
export { MNIST_STANDARDIZE, type Normalization };
export { digitInput as toInput, softmax } from "handprop";

export { MODEL_NAME, freshModel, snapshot, setWeights, fromSnapshot } from "./snapshot.ts";

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
