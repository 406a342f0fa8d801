// Hostile TF.js Layers files for the functional (graph) importer and the newer layers: regressions,
// targeted graph-structure cases, and a time-bounded mutation loop of a functional model's model.json
// and weights (the first round fuzzed a Sequential's). Every input ends in a model or a TfjsFormatError
// naming model.json or the weights, quickly and without allocating what the file merely declares.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { TfjsFormatError, fromTfjsArtifacts, toTfjsArtifacts } from "../src/io/tfjs.ts";
import { fuzzGraphModel } from "./fuzz2-models.ts";
import {
  CASE_MS,
  applyByteEdits,
  applyJsonEdits,
  assertTypedError,
  byteEdit,
  fuzz,
  jsonEdit,
  outcome,
} from "./fuzz-mutate.ts";

const base = toTfjsArtifacts(fuzzGraphModel(true));
const weights = new Uint8Array(base.weightData);
type KerasLayer = { class_name: string; name: string; config: Record<string, unknown>; inbound_nodes: unknown[] };
const layersOf = (json: unknown): KerasLayer[] =>
  (json as { modelTopology: { config: { layers: KerasLayer[] } } }).modelTopology.config.layers;
const byClass = (json: unknown, cls: string): KerasLayer => layersOf(json).find((l) => l.class_name === cls)!;

function load(json: unknown, bytes: Uint8Array = weights) {
  return fromTfjsArtifacts(json, bytes.slice().buffer, { source: "fz2/weights.bin" });
}

function refused(edit: (json: unknown) => void, message: RegExp, bytes: Uint8Array = weights): void {
  const json = structuredClone(base.modelJson) as unknown;
  edit(json);
  const t0 = performance.now();
  const r = outcome(() => load(json, bytes));
  const ms = performance.now() - t0;
  assert.ok(!r.ok, `accepted: ${edit.toString()}`);
  assertTypedError(r.error, TfjsFormatError, /model\.json|fz2\/weights\.bin/);
  assert.match((r.error as Error).message, message);
  assert.ok(ms < CASE_MS, `took ${ms.toFixed(0)} ms (limit ${CASE_MS} ms: a hang guard, as the fuzz loops')`);
}

test("the unedited functional TF.js model imports", () => {
  assert.equal(load(base.modelJson).type, "Model");
});

test("functional graphs: cycles, self-reads, unknown and duplicate names are refused naming the layer", () => {
  const inbound = (name: string) => [[[name, 0, 0, {}]]];
  refused(
    (j) => (byClass(j, "DepthwiseConv2D").inbound_nodes = inbound(byClass(j, "DepthwiseConv2D").name)),
    /layer 1 "depthwise_conv2d_1" \(DepthwiseConv2D\): field "inbound_nodes" reads "depthwise_conv2d_1", which/,
  );
  refused(
    (j) => (byClass(j, "DepthwiseConv2D").inbound_nodes = inbound(byClass(j, "Dense").name)),
    /reads "dense_\d+"/,
  );
  refused((j) => (byClass(j, "DepthwiseConv2D").inbound_nodes = inbound("nowhere")), /nowhere/);
  refused((j) => {
    // Keras layers are named by config.name; a duplicate would shadow the earlier layer for later readers
    const [add, up] = [byClass(j, "Add"), byClass(j, "UpSampling2D")];
    add.config.name = byClass(j, "DepthwiseConv2D").config.name;
    up.inbound_nodes = [[[add.config.name, 0, 0, {}]]];
    (byClass(j, "Conv2DTranspose").inbound_nodes as unknown) = [[[add.config.name, 0, 0, {}]]];
  }, /two tensors are named|used twice|twice/);
  refused(
    (j) =>
      (byClass(j, "Add").inbound_nodes = [
        [
          [byClass(j, "UpSampling2D").name, 0, 0, {}],
          ["input_0", 0, 0, {}],
        ],
      ]),
    /reads "up_sampling2d_5"/,
  );
  refused((j) => (byClass(j, "DepthwiseConv2D").inbound_nodes = [null]), /inbound_nodes/);
});

test("enormous declared sizes are refused before allocating", () => {
  refused((j) => (byClass(j, "DepthwiseConv2D").config.depth_multiplier = 1e8), /expected \[3, 3, 2, 100000000\]/);
  refused((j) => (byClass(j, "Conv2D").config.filters = 1e8), /expected \[3, 3, 4, 100000000\]/);
  refused((j) => (byClass(j, "Conv2D").config.kernel_size = [1e5, 1e5]), /expected \[100000, 100000, 4, 2\]/);
  refused((j) => (byClass(j, "Conv2DTranspose").config.filters = 2e8), /expected \[2, 2, 200000000, 2\]/);
  refused((j) => (byClass(j, "Dense").config.units = 1e9), /expected \[128, 1000000000\]/);
  refused((j) => (byClass(j, "UpSampling2D").config.size = [1e5, 1e5]), /over 268435456 values/);
  refused(
    (j) => (byClass(j, "InputLayer").config.batch_input_shape = [null, 1e5, 1e5, 2]),
    /\(InputLayer\): Input: takes samples of shape \(2, 100000, 100000\)/,
  );
  refused(
    (j) => (byClass(j, "Conv2D").config.dilation_rate = [111478, 111478]),
    /dilated 222957×222957\) is larger than the padded input/,
  );
});

test("fuzz: functional TF.js model.json and weights", async (t) => {
  const runs = await fuzz(
    fc.tuple(fc.array(jsonEdit, { maxLength: 4 }), fc.array(byteEdit, { maxLength: 3 })),
    ([je, be]) => {
      const r = outcome(() => load(applyJsonEdits(base.modelJson, je), applyByteEdits(weights, be)));
      if (r.ok) {
        for (const p of r.value.params()) assert.ok(p.value.data.length > 0);
      } else assertTypedError(r.error, TfjsFormatError, /model\.json|fz2\/weights\.bin/);
    },
  );
  t.diagnostic(`${runs} inputs`);
});
