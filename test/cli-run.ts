// Running the CLI from tests, shared by the CLI test files: the real binary, several command lines
// through main() in one child process, and `handprop train` with a Trainer callback that sends the
// process a real SIGINT (what Ctrl-C sends) after a given number of batches.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { readIdx, writeIdx } from "../src/node/idx.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";

export interface Run {
  code: number | null;
  out: string;
  err: string;
}

const bin = new URL("../bin/handprop.mjs", import.meta.url).pathname;

function collect(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env } });
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

/** `handprop ARGS` through bin/handprop.mjs. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return collect([bin, ...args], env);
}

/**
 * Several command lines through main() in ONE child process (one start-up instead of many), each with
 * its output captured. (Not in the test's process: capturing process.stdout there would also capture
 * the test runner's own reports.)
 */
export async function runMany(argLists: string[][]): Promise<Run[]> {
  const mainUrl = new URL("../src/cli/main.ts", import.meta.url).href;
  const script = `
    const { main } = await import(${JSON.stringify(mainUrl)});
    const results = [];
    for (const args of JSON.parse(process.env.HANDPROP_TEST_ARGS)) {
      let out = "", err = "";
      const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
      process.stdout.write = (s) => ((out += s), true);
      process.stderr.write = (s) => ((err += s), true);
      let code;
      try { code = await main(args); } finally { process.stdout.write = o; process.stderr.write = e; }
      results.push({ code, out, err });
    }
    process.stdout.write(JSON.stringify(results));`;
  const r = await collect(["--import", "tsx", "--input-type=module", "-e", script], {
    HANDPROP_TEST_ARGS: JSON.stringify(argLists),
  });
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Run[];
}

/**
 * `handprop train ...` (args without "train") in a child process whose Trainer gets one more callback:
 * after `afterBatches` batches it sends the process a real SIGINT. The exit code is runTrainCommand's.
 */
export function runTrainInterrupted(args: string[], afterBatches: number): Promise<Run> {
  const trainUrl = new URL("../src/cli/train.ts", import.meta.url).href;
  const argsUrl = new URL("../src/cli/args.ts", import.meta.url).href;
  const script = `
    const { trainCommand, runTrainCommand } = await import(${JSON.stringify(trainUrl)});
    const { parseFlags } = await import(${JSON.stringify(argsUrl)});
    const { values, positionals } = parseFlags(trainCommand.spec, ${JSON.stringify(args)});
    let batches = 0;
    const interrupter = { onBatchEnd() { if (++batches === ${afterBatches}) process.kill(process.pid, "SIGINT"); } };
    process.exitCode = await runTrainCommand(values, positionals, { callbacks: [interrupter] });`;
  return collect(["--import", "tsx", "--input-type=module", "-e", script]);
}

/** A small MNIST folder at `dir`: the first `train` training and `test` test images (and labels) of the real files. */
export function writeSmallMnist(dir: string, train: number, test: number): void {
  mkdirSync(dir, { recursive: true });
  const src = defaultMnistDir();
  for (const [file, n] of [
    [MNIST_FILES.trainImages, train],
    [MNIST_FILES.trainLabels, train],
    [MNIST_FILES.testImages, test],
    [MNIST_FILES.testLabels, test],
  ] as const) {
    const a = readIdx(join(src, file));
    writeIdx(join(dir, file), [n, ...a.shape.slice(1)], a.data.slice(0, n * (a.data.length / a.shape[0])));
  }
}

/** `handprop train mnist` of the small mlp on a writeSmallMnist folder: 64 training samples, 32 held out for validation. */
export function smallMlpTrainArgs(data: string): string[] {
  return ["train", "mnist", "--data", data, "--model", "mlp", "--limit", "64", "--val", "32"];
}
