// Hostile graph-model files (format version 2: Model.config() with nodes, merges, nested models and the
// newer layers): regressions for the defects the second fuzzing round found, targeted cases that were
// already refused (kept so they stay refused), truncation at every byte boundary, and a time-bounded
// mutation loop (test/fuzz-mutate.ts; longer under `npm run fuzz`). Every input ends in a valid load or
// a ModelFormatError naming the file, quickly and without allocating what the file merely declares.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray, shapeSize } from "../src/nd/ndarray.ts";
import { Dense } from "../src/nn/dense.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { UpSampling2D } from "../src/nn/upsample.ts";
import { GlobalAvgPool2D } from "../src/nn/pool.ts";
import { withParamBudget } from "../src/nn/layer.ts";
import { ModelFormatError, deserializeModel, serializeModel, type LoadedModel } from "../src/io/model-format.ts";
import { modelFromFile, modelToFile } from "../src/io/browser.ts";
import { Adam } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { fuzzGraphModel } from "./fuzz2-models.ts";
import {
  applyByteEdits,
  applyJsonEdits,
  CASE_MS,
  assertTypedError,
  byteEdit,
  fuzz,
  jsonEdit,
  outcome,
  type JsonEdit,
} from "./fuzz-mutate.ts";

const model = fuzzGraphModel();
const base = serializeModel(model);
const baseJson = JSON.parse(base.json) as { model: Record<string, unknown> } & Record<string, unknown>;
const FILE = "fz2/model.json";
const names = { manifest: FILE, weights: "fz2/weights.bin" };
const sample = new NDArray(
  Float32Array.from({ length: 32 }, (_, i) => Math.cos(i)),
  [1, 2, 4, 4],
);

/** A load that succeeded must be usable: finite parameters, it runs a sample when small, it saves again. */
function checkLoaded(loaded: LoadedModel): void {
  for (const p of loaded.model.params()) assert.ok(p.value.data.every(Number.isFinite), `${p.name}: non-finite`);
  const shape = loaded.model.inputShape;
  if (shape && shapeSize(shape) <= 4096) {
    const x = new NDArray(new Float32Array(shapeSize(shape)).fill(0.5), [1, ...shape]);
    assert.ok(loaded.model.forward(x).data.every(Number.isFinite));
  }
  serializeModel(loaded.model);
}

function load(json: string | Uint8Array, weights: Uint8Array = base.weights): LoadedModel {
  return deserializeModel(json, weights, undefined, names);
}

function checkParse(json: string | Uint8Array, weights: Uint8Array = base.weights): void {
  const r = outcome(() => load(json, weights));
  if (r.ok) checkLoaded(r.value);
  else assertTypedError(r.error, ModelFormatError, /fz2\/(model\.json|weights\.bin)/);
}

/** model.json with `edit` applied to a copy of the manifest. */
function edited(edit: (m: typeof baseJson & { model: Record<string, never> }) => void): string {
  const m = structuredClone(baseJson) as typeof baseJson & { model: Record<string, never> };
  edit(m);
  return JSON.stringify(m);
}

/**
 * The load must fail with a ModelFormatError matching `message`, within `ms`: a guard against the gigabytes and
 * minutes these cases once took, as loose as the fuzz loops' per-case limit (a loaded CI machine is slow).
 */
function refused(json: string, message: RegExp, ms = CASE_MS): void {
  const t0 = performance.now();
  const r = outcome(() => load(json));
  const took = performance.now() - t0;
  assert.ok(!r.ok, `accepted: ${json.slice(0, 200)}`);
  assertTypedError(r.error, ModelFormatError, FILE);
  assert.match((r.error as Error).message, message);
  assert.ok(took < ms, `took ${took.toFixed(0)} ms`);
}

test("the unedited graph model loads and predicts bit for bit", () => {
  const loaded = load(base.json);
  assert.deepEqual(Array.from(loaded.model.predict(sample).data), Array.from(model.predict(sample).data));
});

type Layers = Record<string, unknown>[];
const layerIndex = (name: string): number =>
  (baseJson.model.nodes as { name: string }[]).findIndex((n) => n.name === name);

test("defect: huge layers declared at any depth or built from the input shape are refused before allocating", () => {
  // Each of these allocated (and initialised) gigabytes for tens of seconds before the weights table was
  // compared: the size pre-check knew only top-level Dense, Conv2D and BatchNorm configs.
  const cases: [string, (layers: Layers) => void][] = [
    [
      "a nested Sequential's Dense 30000→30000",
      (l) => {
        const head = l[layerIndex("head")] as { layers: Layers };
        head.layers.push({ type: "Dense", inFeatures: 3, outFeatures: 30000 }, { type: "Dense", outFeatures: 30000 });
      },
    ],
    ["DepthwiseConv2D depthMultiplier 1e8", (l) => (l[layerIndex("dw")].depthMultiplier = 1e8)],
    ["Conv2DTranspose outChannels 2e8", (l) => (l[layerIndex("tconv")].outChannels = 2e8)],
    ["GroupNorm numChannels 1e9", (l) => (l[layerIndex("norm")] = { type: "GroupNorm", groups: 1, numChannels: 1e9 })],
    [
      "LayerNorm normalizedShape 1e5×1e5",
      (l) => {
        l[layerIndex("ln")] = { type: "LayerNorm", normalizedShape: [1e5, 1e5] };
      },
    ],
    [
      "a lazily built Conv2D of 1e8 output channels",
      (l) => {
        const conv = l[layerIndex("conv")];
        delete conv.inChannels;
        conv.outChannels = 1e8;
      },
    ],
  ];
  for (const [what, edit] of cases) {
    const json = edited((m) => {
      edit(m.model.layers as Layers);
    });
    assert.doesNotThrow(() => {
      refused(json, /would hold \d+ values, but fz2\/weights\.bin \(\d+ values\) allows \d+ in all/);
    }, what);
  }
});

test("withParamBudget bounds makeParam and restores the outer budget", () => {
  assert.throws(
    () => withParamBudget(10, "the test", () => new Dense({ inFeatures: 4, outFeatures: 3 })),
    /RangeError: parameter "weight" of shape \(4, 3\) would hold 12 values, but the test allows 10 in all \(10 left\)/,
  );
  const d = withParamBudget(15, "the test", () => new Dense({ inFeatures: 4, outFeatures: 3 }));
  assert.equal(d.params().length, 2);
  assert.doesNotThrow(() => new Dense({ inFeatures: 1000, outFeatures: 1000 })); // no budget outside
});

test("defect: shapes that grow past 2^28 values per sample are refused when the model is built", () => {
  // These loaded (the parameters are unchanged) and then failed in predict with the kernels' "need 189642
  // MiB of WebAssembly memory" or "internal error: a wasm kernel asked for -17179867904 bytes of scratch".
  refused(
    edited((m) => ((m.model.layers as Layers)[layerIndex("dw")].dilation = 111478)),
    /node 'dw' \(DepthwiseConv2D\) applied to 'img' \(2, 4, 4\): DepthwiseConv2D: pads its input to \(2, 222960, 2/,
  );
  refused(
    edited((m) => ((m.model.layers as Layers)[layerIndex("dw")].dilation = 2 ** 31)),
    /pads its input to .* more than the 268435456 \(2\^28\) handprop allows per sample/,
  );
  // A fully convolutional Sequential: nothing else pins its sizes.
  const small = new Sequential([new UpSampling2D({ size: 2 }), new GlobalAvgPool2D(), new Dense({ outFeatures: 2 })], {
    inputShape: [1, 28, 28],
    seed: 0,
  });
  const saved = serializeModel(small);
  const m = JSON.parse(saved.json) as { model: { layers: Layers } };
  m.model.layers[0].size = 100000;
  const r = outcome(() => deserializeModel(JSON.stringify(m), saved.weights, undefined, names));
  assert.ok(!r.ok);
  assertTypedError(r.error, ModelFormatError, FILE);
  assert.match(
    (r.error as Error).message,
    /layer 0 \(UpSampling2D\): outputs samples of shape \(1, 2800000, 2800000\), 7840000000000 values, more than/,
  );
});

test("defect: a null node or a null nested layer config names the field (was 'Cannot read properties of null')", () => {
  refused(
    edited((m) => ((m.model.nodes as unknown[])[0] = null)),
    /model\.nodes\[0\]: expected \{"name": string, "inputs": \[tensor names\]\}, got null/,
  );
  refused(
    edited((m) => ((m.model.layers as Layers)[layerIndex("head")].layers = [null])),
    /layer 0: a layer config must be an object with a string "type", got null/,
  );
});

test("graph structure: cycles, self-reads, dangling and duplicate names, mismatched merges are refused", () => {
  const nodes = (m: { model: Record<string, unknown> }) => m.model.nodes as { name: string; inputs: unknown[] }[];
  const cases: [(m: typeof baseJson) => void, RegExp][] = [
    [(m) => (nodes(m)[1].inputs = ["norm"]), /unknown tensor "norm" \(a node may read the input or earlier nodes/],
    [(m) => (nodes(m)[0].inputs = ["relu"]), /unknown tensor "relu"/], // a cycle: dw ← … ← relu ← dw
    [(m) => (nodes(m)[2].name = "dw"), /the name 'dw' is used twice/],
    [(m) => (nodes(m)[2].name = "img"), /the name 'img' is used twice/],
    [(m) => (m.model.output = "nowhere"), /"output" names no node: "nowhere"/],
    [(m) => (m.model.output = "norm"), /"nodes" must list every node in execution order/],
    [(m) => (nodes(m)[0].inputs = []), /model\.nodes\[0\]: expected/],
    [(m) => (nodes(m)[2].inputs = ["img", 7]), /unknown tensor 7/],
    [(m) => (nodes(m)[2].inputs = ["img", "up"]), /unknown tensor "up"/],
    [(m) => nodes(m).pop(), /one entry per layer/],
    [(m) => (nodes(m)[layerIndex("res")].inputs = ["img", "img", "dw"]), /^(?!.*Cannot read)/],
    [(m) => (nodes(m)[layerIndex("cat")].inputs = ["up", "res"]), /Concatenate/],
    [(m) => (nodes(m)[layerIndex("res")].inputs = ["img", "up"]), /Add needs equal shapes|unknown tensor/],
    [(m) => (nodes(m)[layerIndex("act")].inputs = ["norm", "dw"]), /GELU.*takes one input/],
    [
      (m) => (m.model.inputShape = [2, 1e9, 1e9]),
      /Input: takes samples of shape \(2, 1000000000, 1000000000\), 2000000000000000000 values/,
    ],
    [(m) => (m.model.inputShape = [2, 4.5, 4]), /"model\.inputShape" must be an array of non-negative integers/],
    [(m) => (m.model.inputShape = [2, 0, 4]), /Input: shape must be a non-empty array of positive integers/],
    [
      (m) => {
        delete m.model.inputShape;
      },
      /a graph Model needs "inputShape"/,
    ],
    [(m) => ((m.model.layers as Layers)[1].type = "__proto__"), /unknown layer type "__proto__"/],
    [(m) => ((m.model.layers as Layers)[1].type = "constructor"), /unknown layer type "constructor"/],
  ];
  for (const [edit, message] of cases) refused(edited(edit), message);
});

test("NaN, Infinity, negative and fractional values in every numeric layer option are refused", (t) => {
  const layers = baseJson.model.layers as Layers;
  const numericPaths: [number, string[]][] = [];
  const walk = (v: unknown, i: number, path: string[]): void => {
    if (typeof v === "number") numericPaths.push([i, path]);
    else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) walk(x, i, [...path, k]);
  };
  layers.forEach((l, i) => {
    walk(l, i, []);
  });
  assert.ok(numericPaths.length >= 20, `only ${numericPaths.length} numeric options`);
  let refusals = 0;
  const accepted: string[] = [];
  for (const [i, path] of numericPaths) {
    // As text in the file: 1e999 parses as Infinity, NaN is not JSON at all (a malformed-JSON error).
    for (const bad of ["NaN", "1e999", "-1e999", "-1", "0", "0.5", "1e300", "-0.25", "null", '"3"', "[]"]) {
      const json = edited((m) => {
        let o = (m.model.layers as Layers)[i];
        for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
        o[path[path.length - 1]] = "@bad@";
      }).replace('"@bad@"', bad);
      const r = outcome(() => load(json));
      if (r.ok) {
        checkLoaded(r.value);
        accepted.push(`${String(layers[i].type)}.${path.join(".")}=${bad}`);
      } else {
        assertTypedError(r.error, ModelFormatError, FILE);
        refusals++;
      }
    }
  }
  t.diagnostic(`accepted: ${accepted.join(", ")}`);
  assert.ok(refusals > numericPaths.length * 4, `${refusals} refusals`);
});

test("truncated at every byte boundary: model.json and weights.bin", () => {
  const json = new TextEncoder().encode(base.json);
  // (the text ends in "}\n": cut before the final newline it is still the whole document)
  for (let n = 0; n < json.length - 1; n++) {
    const r = outcome(() => load(json.subarray(0, n)));
    assert.ok(!r.ok, `accepted model.json cut at ${n}`);
    assertTypedError(r.error, ModelFormatError, FILE);
  }
  for (let n = 0; n < base.weights.length; n++) {
    const r = outcome(() => load(base.json, base.weights.subarray(0, n)));
    assert.ok(!r.ok);
    assertTypedError(r.error, ModelFormatError, "fz2/weights.bin");
    assert.match((r.error as Error).message, /truncated/);
  }
});

test("weights whose count or dtype disagrees with the config name the tensor and the shapes", () => {
  const tensors = (m: typeof baseJson) => (m.weights as { tensors: Record<string, unknown>[] }).tensors;
  refused(
    edited((m) => {
      tensors(m)[0].dtype = "float64";
    }),
    /offset|mixes dtypes|byteLength/,
  );
  refused(
    edited((m) => {
      (m.model.layers as Layers)[layerIndex("tconv")].outChannels = 3;
    }),
    /has shape|needs|would hold|expected/,
  );
});

test("nesting models deeper than the manifest's depth limit is refused without recursion", () => {
  let inner: Record<string, unknown> = { type: "ReLU" };
  for (let d = 0; d < 200; d++) inner = { type: "Sequential", layers: [inner] };
  refused(
    edited((m) => ((m.model.layers as Layers)[layerIndex("act")] = inner)),
    /nested more than 64 levels deep/,
  );
});

test("fuzz: graph model.json edited field by field", async (t) => {
  const runs = await fuzz(fc.array(jsonEdit, { minLength: 1, maxLength: 4 }), (edits: JsonEdit[]) => {
    checkParse(JSON.stringify(applyJsonEdits(baseJson, edits)));
  });
  t.diagnostic(`${runs} inputs`);
});

test("fuzz: graph model.json's model section edited field by field", async (t) => {
  const runs = await fuzz(fc.array(jsonEdit, { minLength: 1, maxLength: 3 }), (edits: JsonEdit[]) => {
    checkParse(JSON.stringify({ ...baseJson, model: applyJsonEdits(baseJson.model, edits) }));
  });
  t.diagnostic(`${runs} inputs`);
});

test("fuzz: graph model.json and weights.bin edited byte by byte", async (t) => {
  const json = new TextEncoder().encode(base.json);
  const edits = fc.array(byteEdit, { maxLength: 4 });
  const runs = await fuzz(fc.tuple(edits, edits), ([j, w]) => {
    checkParse(applyByteEdits(json, j), applyByteEdits(base.weights, w));
  });
  t.diagnostic(`${runs} inputs`);
});

test("the .handprop container of a graph checkpoint: truncated at every byte, and edited byte by byte", async (t) => {
  const optimizer = new Adam({ lr: 0.01 });
  const trained = fuzzGraphModel();
  trained.trainBatch(sample, new Int32Array([1]), new SoftmaxCrossEntropy(), optimizer);
  const file = modelToFile(trained, { optimizer, training: { epochsDone: 1 } });
  assert.equal(modelFromFile(file, "fz2.handprop").optimizer?.type, "Adam");
  for (let n = 0; n < file.length; n++) {
    const r = outcome(() => modelFromFile(file.subarray(0, n), "fz2.handprop"));
    assert.ok(!r.ok, `accepted the container cut at ${n}`);
    assertTypedError(r.error, ModelFormatError, "fz2.handprop");
  }
  const runs = await fuzz(fc.array(byteEdit, { minLength: 1, maxLength: 4 }), (edits) => {
    const r = outcome(() => modelFromFile(applyByteEdits(file, edits), "fz2.handprop"));
    if (r.ok) checkLoaded(r.value);
    else assertTypedError(r.error, ModelFormatError, "fz2.handprop");
  });
  t.diagnostic(`${runs} inputs`);
});
