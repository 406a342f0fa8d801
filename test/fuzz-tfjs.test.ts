// Fuzzing the TF.js Layers reader: toTfjsArtifacts output mutated (model.json field by field, the
// weight bytes byte by byte) ends in a model or a TfjsFormatError naming model.json or the weights,
// within a time and memory bound.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { buildModel } from "../src/nn/models.ts";
import { TfjsFormatError, fromTfjsArtifacts, toTfjsArtifacts } from "../src/io/tfjs.ts";
import { applyByteEdits, applyJsonEdits, assertTypedError, byteEdit, fuzz, jsonEdit, outcome } from "./fuzz-mutate.ts";

const base = toTfjsArtifacts(buildModel("cnn-small", { seed: 1 }));
const weights = new Uint8Array(base.weightData);

test("fuzz: TF.js model.json and weights", async (t) => {
  const runs = await fuzz(
    fc.tuple(fc.array(jsonEdit, { maxLength: 4 }), fc.array(byteEdit, { maxLength: 3 })),
    ([je, be]) => {
      const edited = applyByteEdits(weights, be);
      const r = outcome(() =>
        fromTfjsArtifacts(applyJsonEdits(base.modelJson, je), edited.slice().buffer, { source: "fz/weights.bin" }),
      );
      if (r.ok) {
        for (const p of r.value.params()) assert.ok(p.value.data.length > 0);
      } else assertTypedError(r.error, TfjsFormatError, /model\.json|fz\/weights\.bin/);
    },
  );
  t.diagnostic(`${runs} inputs`);
});
