// `handprop predict` through the real binary (issue 11, defects 4, 8, 11, 14): a batch mixing good
// pictures with a huge PGM header, a truncated file, a corrupt PNG, a missing file and a name holding
// escape characters classifies every good one, prints one line per failed file naming it, and exits
// 1; an invalid stored normalization is an error naming model.json and the field. The model is the
// pretrained LeNet-5 the playground ships (web/public/models/lenet5/).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pngjs from "pngjs";
import { REPO_ROOT } from "../src/cli/serve.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { readIdx } from "../src/node/idx.ts";
import { tempDirForFile } from "./helpers.ts";

const bin = join(REPO_ROOT, "bin", "handprop.mjs");
const shipped = join(REPO_ROOT, "web", "public", "models", "lenet5");
const tmp = tempDirForFile("handprop-predict-cli-");

function run(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args]);
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code, out, err });
    });
  });
}

/** A copy of the shipped model with training.dataset.normalization replaced (undefined: removed). */
function modelWith(name: string, normalization: unknown): string {
  const dir = join(tmp, name);
  mkdirSync(dir);
  copyFileSync(join(shipped, "weights.bin"), join(dir, "weights.bin"));
  const manifest = JSON.parse(readFileSync(join(shipped, "model.json"), "utf8")) as {
    training: { dataset: Record<string, unknown> };
  };
  if (normalization === undefined) delete manifest.training.dataset.normalization;
  else manifest.training.dataset.normalization = normalization;
  writeFileSync(join(dir, "model.json"), JSON.stringify(manifest));
  return dir;
}

const images = readIdx(join(defaultMnistDir(), MNIST_FILES.testImages));
const labels = readIdx(join(defaultMnistDir(), MNIST_FILES.testLabels));

/** MNIST test image i, enlarged k× and drawn dark on a light w×h page at (ox, oy), as a PNG file. */
function pagePng(i: number, k: number, w: number, h: number, ox: number, oy: number): string {
  const png = new pngjs.PNG({ width: w, height: h });
  png.data.fill(255);
  for (let y = 0; y < 28 * k; y++)
    for (let x = 0; x < 28 * k; x++) {
      const v = 255 - images.data[i * 784 + Math.floor(y / k) * 28 + Math.floor(x / k)];
      const p = 4 * ((oy + y) * w + ox + x);
      png.data[p] = png.data[p + 1] = png.data[p + 2] = v;
    }
  const file = join(tmp, `digit${i}-${labels.data[i]}.png`);
  writeFileSync(file, pngjs.PNG.sync.write(png));
  return file;
}

test("a batch with bad files: the good ones are classified, each bad one is one line naming it, exit 1", async () => {
  const good = [pagePng(0, 2, 200, 90, 130, 10), pagePng(1, 3, 100, 100, 5, 8), pagePng(2, 1, 28, 40, 0, 6)];
  const bad: [string, string | Uint8Array, RegExp][] = [
    [
      "huge.pgm",
      "P5\n100000 100000\n255\n",
      /huge\.pgm: the PGM header declares 100,000×100,000 = 10,000,000,000 pixels, above predict's limit of 16,777,216/,
    ],
    [
      "short.pgm",
      "P5\n28 28\n255\n" + "x".repeat(100),
      /short\.pgm: truncated: header says 28×28 pixels × 1 byte\(s\) = 784 bytes from offset 13, file has 100/,
    ],
    [
      "corrupt.png",
      Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48]),
      /corrupt\.png: not a readable PNG: truncated/,
    ],
    ["blank.pgm", "P2 3 3 255\n9 9 9 9 9 9 9 9 9\n", /blank\.pgm: no digit: the picture is blank/],
    ["esc\u001b]0;owned\u0007.pgm", "P7\n", /esc\\e\]0;owned\\x07\.pgm: not a PNG or PGM/],
  ];
  for (const [name, content] of bad) writeFileSync(join(tmp, name), content);
  const files = [good[0], ...bad.map(([n]) => join(tmp, n)), join(tmp, "missing.png"), good[1], good[2]];
  const [text, json] = await Promise.all([
    run(["predict", "--model", shipped, ...files]),
    run(["predict", "--model", shipped, "--json", ...files]),
  ]);
  assert.equal(text.code, 1);
  const lines = text.out.trim().split("\n");
  assert.equal(lines.length, 3, text.out);
  good.forEach((f, i) => {
    assert.ok(lines[i].startsWith(`${f}: ${labels.data[i]} (`), `${lines[i]} (label ${labels.data[i]})`);
  });
  const errLines = text.err.trim().split("\n");
  assert.equal(errLines.length, bad.length + 1, text.err);
  bad.forEach(([, , re], i) => {
    assert.match(errLines[i], new RegExp(`^handprop predict: ${tmp}/${re.source}`));
  });
  assert.match(errLines[bad.length], /^handprop predict: .*missing\.png: no such file$/);
  assert.ok(
    !Array.from(text.err).some((c) => c.charCodeAt(0) < 0x20 && c !== "\n"),
    "no control character reaches the terminal",
  );

  assert.equal(json.code, 1);
  const r = JSON.parse(json.out) as {
    predictions: { file: string; top: { digit: number }[] }[];
    errors: { file: string; error: string }[];
  };
  assert.deepEqual(
    r.predictions.map((p) => [p.file, p.top[0].digit]),
    good.map((f, i) => [f, labels.data[i]]),
  );
  assert.deepEqual(
    r.errors.map((e) => e.file),
    files.filter((f) => !good.includes(f)),
  );
});

test("an invalid stored normalization is an error naming model.json and the field", async () => {
  const digit = pagePng(3, 1, 28, 28, 0, 0);
  const cases: [unknown, RegExp][] = [
    [
      { scale: 1 / 255, mean: 0.1307, std: 0 },
      /training\.dataset\.normalization\.std must be a finite number > 0, got 0/,
    ],
    [
      { scale: 1 / 255, mean: 0.1307, std: -1 },
      /training\.dataset\.normalization\.std must be a finite number > 0, got -1/,
    ],
    [
      { scale: 1 / 255, mean: "0.1307", std: 0.3081 },
      /training\.dataset\.normalization\.mean must be a finite number, got "0\.1307"/,
    ],
  ];
  const runs = await Promise.all(cases.map(([n], i) => run(["predict", "--model", modelWith(`bad${i}`, n), digit])));
  runs.forEach((r, i) => {
    assert.equal(r.code, 1, r.err);
    assert.equal(r.out, "");
    assert.match(r.err, new RegExp(`^handprop predict: .*bad${i}/model\\.json: ${cases[i][1].source}\\n$`));
  });
  // No normalization stored: MNIST's is used, and predict says so.
  const none = await run(["predict", "--model", modelWith("none", undefined), digit]);
  assert.equal(none.code, 0, none.err);
  assert.match(none.err, /note: .*none does not record its input normalization; using MNIST's/);
  assert.match(none.out, new RegExp(`: ${labels.data[3]} \\(`));
});
