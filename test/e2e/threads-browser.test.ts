// The kernel threads in a browser: a page bundled by Vite (production build, as `handprop serve` does)
// starts a module Web Worker that imports handprop, trains LeNet-5 for a few steps on 1 thread and
// then on 2, and reports. The kernel workers are started from the source text of
// src/kernels/thread-worker.ts as Vite compiled and minified it, so this checks that the text runs there
// (the Node tests check it under tsx): two threads start, the workers run parts, the weights are the
// 1-thread weights bit for bit.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO_ROOT, startStaticServer } from "../../src/cli/serve.ts";
import { CHROMIUM, SKIP_E2E } from "./harness.ts";

const PAGE = `<!doctype html><html><body><pre id="out">running</pre>
<script type="module" src="./main.ts"></script></body></html>`;

const MAIN = `const worker = new Worker(new URL("./train.ts", import.meta.url), { type: "module" });
const out = document.getElementById("out");
worker.onmessage = (e) => { out.textContent = JSON.stringify(e.data); };
worker.onerror = (e) => { out.textContent = JSON.stringify({ error: e.message }); };
`;

function trainSource(): string {
  const src = JSON.stringify(join(REPO_ROOT, "src", "index.ts"));
  const wasm = JSON.stringify(join(REPO_ROOT, "src", "kernels", "wasm.ts"));
  return `import {
  setThreads, getThreads, threadsUnavailable, buildModel, RandomState, NDArray, Adam, SoftmaxCrossEntropy,
} from ${src};
import { poolEveryCall, wasmWorkerParts } from ${wasm};
function weights() {
  const model = buildModel("lenet5", { seed: 0 });
  const rng = new RandomState(1);
  const x = new NDArray(Float32Array.from(rng.randn(16 * 784).data), [16, 1, 28, 28]);
  const y = Int32Array.from({ length: 16 }, (_, i) => i % 10);
  const optimizer = new Adam({ lr: 1e-3 });
  for (let s = 0; s < 3; s++) model.trainBatch(x, y, new SoftmaxCrossEntropy(), optimizer);
  return model.params().map((p) => Array.from(p.value.data));
}
const one = weights();
const started = await setThreads(2);
poolEveryCall(true);
const two = weights();
const same = one.every((w, i) => w.every((v, j) => Object.is(v, two[i][j])));
const report = { started, threads: getThreads(), reason: threadsUnavailable(), workerParts: wasmWorkerParts(), same };
self.postMessage(report);
`;
}

test("kernel threads run in a Vite-built Web Worker, bit-identical to one thread", { skip: SKIP_E2E }, async () => {
  const work = mkdtempSync(join(tmpdir(), "handprop-threads-e2e-"));
  try {
    writeFileSync(join(work, "index.html"), PAGE);
    writeFileSync(join(work, "main.ts"), MAIN);
    writeFileSync(join(work, "train.ts"), trainSource());
    const { build } = await import("vite");
    const outDir = join(work, "dist");
    await build({
      configFile: false,
      root: work,
      base: "./",
      logLevel: "error",
      build: { outDir, emptyOutDir: true, target: "es2022" },
      worker: { format: "es" },
    });
    const { server, url } = await startStaticServer(outDir, { host: "127.0.0.1", port: 0 });
    const args = ["--headless", "--no-sandbox", "--disable-gpu"];
    const browser = await chromium.launch({ executablePath: CHROMIUM, args });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on("pageerror", (e) => errors.push(e.message));
      await page.goto(new URL("index.html", url.endsWith("/") ? url : `${url}/`).href);
      const done = () => document.getElementById("out")?.textContent !== "running";
      await page.waitForFunction(done, null, { timeout: 120_000 });
      const report = JSON.parse((await page.textContent("#out")) ?? "{}") as Record<string, unknown>;
      assert.deepEqual(errors, []);
      assert.equal(report.error, undefined, String(report.error));
      assert.equal(report.reason, null, "threadsUnavailable()");
      assert.equal(report.started, 2);
      assert.equal(report.threads, 2);
      assert.ok(typeof report.workerParts === "number" && report.workerParts > 0, "the worker ran parts");
      assert.equal(report.same, true, "2 threads' weights equal 1 thread's bit for bit");
    } finally {
      await browser.close();
      server.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
