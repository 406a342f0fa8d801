// The browser tests on a machine without Chromium: they skip, and a run prints ONE line saying how to
// enable them (not one per test file); where CI is set they fail with that instruction instead.
// Simulated with HANDPROP_CHROMIUM pointing at nothing; the page tests never reach a browser here.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/cli/serve.ts";

const [PAGE1, PAGE2] = ["page1.test.ts", "page2.test.ts"].map((f) => join(REPO_ROOT, "test", "e2e", f));
/** How many top-level tests a page file declares: each one must be skipped (or fail) without a browser. */
const testsIn = (file: string): number =>
  readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.startsWith("test(")).length;

/** `node --test files` with Chromium missing and this environment; the three runs below start at once. */
function runPageTests(files: string[], env: Record<string, string>): Promise<{ status: number | null; out: string }> {
  // NODE_TEST_CONTEXT would make the inner `node --test` report to this runner instead of running.
  const { CI: _ci, HANDPROP_SKIP_E2E: _skip, NODE_TEST_CONTEXT: _context, ...rest } = process.env;
  const child = spawn(process.execPath, ["--import", "tsx", "--test", ...files], {
    cwd: REPO_ROOT,
    env: { ...rest, HANDPROP_CHROMIUM: join(REPO_ROOT, "no-such-chromium"), ...env },
    timeout: 60000,
  });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) =>
    child.on("close", (status) => {
      resolve({ status, out });
    }),
  );
}

const skipped = runPageTests([PAGE1, PAGE2], {});
const onCi = runPageTests([PAGE2], { CI: "true" });
const optedOut = runPageTests([PAGE2], { CI: "true", HANDPROP_SKIP_E2E: "1" });

test("without Chromium the browser tests skip, with one line for the whole run saying how to enable them", async () => {
  const { status, out } = await skipped;
  assert.equal(status, 0, out);
  const notices = out.split("\n").filter((line) => line.includes("handprop: browser tests skipped"));
  assert.equal(notices.length, 1, `expected one notice for two test files:\n${notices.join("\n")}`);
  assert.match(
    notices[0],
    /no Chromium at \S*no-such-chromium\. To run them: apt-get install -y --no-install-recommends chromium/,
  );
  assert.match(out, new RegExp(`^# skipped ${testsIn(PAGE1) + testsIn(PAGE2)}$`, "m"));
  assert.match(out, /^# fail 0$/m);
});

test("where CI is set, a missing Chromium fails the browser tests with the instruction", async () => {
  const { status, out } = await onCi;
  assert.notEqual(status, 0);
  assert.match(out, new RegExp(`^# fail ${testsIn(PAGE2)}$`, "m"));
  assert.match(out, /CI is set, so the browser tests must run: apt-get install -y --no-install-recommends chromium/);
  assert.doesNotMatch(out, /handprop: browser tests skipped/);
});

test("HANDPROP_SKIP_E2E=1 skips them even where CI is set", async () => {
  const { status, out } = await optedOut;
  assert.equal(status, 0, out);
  assert.match(out, new RegExp(`^# skipped ${testsIn(PAGE2)}$`, "m"));
});
