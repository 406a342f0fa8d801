// The handprop command: output, JSON mode, and usage errors (one line, exit code 2).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { loadFixture } from "./helpers.ts";

const bin = new URL("../bin/handprop.mjs", import.meta.url).pathname;
function run(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("handprop seed --json prints the NumPy numbers for given parameters", () => {
  const c = loadFixture<{ seed: number; epochs: number; lr: number; w1: number[][]; costAfter: number }[]>(
    "article.json",
  ).find((k) => k.seed === 42)!;
  const r = run("seed", "--seed", String(c.seed), "--epochs", String(c.epochs), "--lr", String(c.lr), "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as {
    w1: number[][];
    w2: number[][];
    costBefore: number;
    costAfter: number;
    startOut: number[];
    finalOut: number[];
  };
  assert.deepEqual(Object.keys(j), ["w1", "w2", "costBefore", "costAfter", "startOut", "finalOut"]);
  assert.ok(Math.abs(j.costAfter - c.costAfter) <= 1e-9 * c.costAfter);
  assert.ok(Math.abs(j.w1[1][0] - c.w1[1][0]) <= 1e-9 * Math.abs(c.w1[1][0]));
});

test("handprop seed --epochs 0 is allowed", () => {
  const r = run("seed", "--epochs", "0", "--json");
  assert.equal(r.code, 0, r.err);
  const j = JSON.parse(r.out) as { costBefore: number; costAfter: number };
  assert.equal(j.costBefore, j.costAfter);
});

test("usage errors: one line on stderr, exit code 2", () => {
  for (const [args, pattern] of [
    [["seed", "--bogus"], /unknown option '--bogus'/],
    [["seed", "--epochs", "abc"], /--epochs expects a non-negative integer, got 'abc'/],
    [["seed", "--epochs", "-3"], /--epochs expects a non-negative integer, got '-3'/],
    [["seed", "--lr", "fast"], /--lr expects a number, got 'fast'/],
    [["seed", "--seed", "4294967296"], /--seed must be between 0 and 2\*\*32 - 1/],
    [["seed", "--lr"], /option '--lr' needs a value/],
    [["frobnicate"], /unknown command 'frobnicate'/],
  ] as const) {
    const r = run(...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, pattern);
    assert.equal(r.err.trim().split("\n").length, 1, `one line: ${r.err}`);
  }
});

test("--help lists every command and flag", () => {
  const r = run("--help");
  assert.equal(r.code, 0);
  for (const s of ["seed", "gradcheck", "--epochs", "--lr", "--json", "--seed"]) assert.ok(r.out.includes(s), s);
  const s = run("seed", "--help");
  assert.equal(s.code, 0);
  assert.match(s.out, /--epochs <N>/);
});
