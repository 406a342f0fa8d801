// bench/conv-profile.ts and bench/ab.ts drive kernel exports that KernelExports does not type (im2colImage,
// col2imImage, gemmNT, gemmPacked): a smoke run on a tiny convolution keeps them working. No speed is asserted.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { simdSupported } from "../src/kernels/wasm.ts";

const root = new URL("..", import.meta.url).pathname;

test("conv-profile runs every phase of a small convolution and reports each", { skip: !simdSupported() }, () => {
  const r = spawnSync(
    process.execPath,
    ["--import", "tsx", "bench/conv-profile.ts", "2", "3", "5", "9", "3", "--rounds", "1"],
    { cwd: root, encoding: "utf8", timeout: 60_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  for (const phase of ["forward: whole call", "im2col", "GEMM W·col", "dW: dot products", "dx: GEMM", "dx: col2im"])
    assert.ok(r.stdout.includes(phase), `no "${phase}" line in:\n${r.stdout}`);
  assert.match(r.stdout, /conv 3×3 'same' N2 3→5 9×9/);
});

test("conv-profile rejects bad arguments with its usage line", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", "bench/conv-profile.ts", "1", "1", "1", "2", "5"], {
    cwd: root,
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: node --import tsx bench\/conv-profile.ts/);
});
