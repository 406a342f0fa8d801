// Fuzzing the IDX reader, raw and gzipped: mutated files end in a valid array or an IdxError naming
// the file, within a time and memory bound; gzip is never inflated past the header's declared size.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { gzipSync } from "node:zlib";
import { IdxError, encodeIdx, type IdxArray } from "../src/io/idx.ts";
import { decodeIdxFile } from "../src/node/idx.ts";
import { applyByteEdits, assertTypedError, byteEdit, fuzz, outcome } from "./fuzz-mutate.ts";

const images = encodeIdx(
  [5, 6, 6],
  Uint8Array.from({ length: 180 }, (_, i) => (i * 37) % 256),
);
const floats = encodeIdx(
  [3, 4],
  Float32Array.from({ length: 12 }, (_, i) => i / 3),
);

/** A decoded array must be exactly as large as its shape says. */
function checkDecoded(a: IdxArray): void {
  assert.equal(
    a.data.length,
    a.shape.reduce((x, y) => x * y, 1),
  );
}

test("fuzz: raw IDX files", async (t) => {
  const runs = await fuzz(
    fc.tuple(fc.constantFrom(images, floats), fc.array(byteEdit, { minLength: 1, maxLength: 5 })),
    ([file, edits]) => {
      const r = outcome(() => decodeIdxFile(applyByteEdits(file, edits), "fz-idx3-ubyte"));
      if (r.ok) checkDecoded(r.value);
      else assertTypedError(r.error, IdxError, /^fz-idx3-ubyte/);
    },
  );
  t.diagnostic(`${runs} inputs`);
});

test("fuzz: gzipped IDX files (edits before and after compression)", async (t) => {
  const edits = fc.array(byteEdit, { maxLength: 4 });
  const runs = await fuzz(fc.tuple(fc.constantFrom(images, floats), edits, edits), ([file, before, afterGzip]) => {
    const gz = applyByteEdits(gzipSync(applyByteEdits(file, before)), afterGzip);
    const r = outcome(() => decodeIdxFile(gz, "fz-idx3-ubyte.gz", true));
    if (r.ok) checkDecoded(r.value);
    else assertTypedError(r.error, IdxError, /^fz-idx3-ubyte\.gz/);
  });
  t.diagnostic(`${runs} inputs`);
});
