// `handprop bench`: the interleaved peer benchmark of bench/run.ts (handprop vs PyTorch, TensorFlow.js,
// ConvNetJS, NumPy and the WebAssembly SIMD ceiling).
//
// The dependency on bench/ is one-way and late: nothing in src/ imports bench/ statically (a bundler building
// dist/cli.js must not pull the peers in), bench/run.ts registers nothing in src/, and this command resolves
// bench/run.ts by path from the package root only when it runs. An installed package has no bench/: the
// module-not-found error below is turned into a "needs a checkout" message by runNeedingCheckout (main.ts).

import { existsSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { defineCommand } from "./args.ts";
import { REPO_ROOT } from "./serve.ts";

/** bench/run.ts's entry point, as the CLI sees it: argv in the `npm run bench` form, exit code out. */
type BenchMain = (argv: string[]) => Promise<number>;

/** Load the checkout's bench/run.ts by path, at run time only; a missing file is a MODULE_NOT_FOUND error. */
async function loadBenchMain(): Promise<BenchMain> {
  const entry = join(REPO_ROOT, "bench", "run.ts");
  if (!existsSync(entry)) {
    throw Object.assign(new Error(`cannot find module ${entry}`), { code: "ERR_MODULE_NOT_FOUND" });
  }
  const module = (await import(pathToFileURL(entry).href)) as { benchMain: BenchMain };
  return module.benchMain;
}

export const benchCommand = defineCommand(
  {
    name: "bench",
    summary:
      "Interleaved benchmark: LeNet-5, convolutions and GEMM against PyTorch, TensorFlow.js, ConvNetJS, " +
      "the wasm SIMD ceiling",
    flags: {
      quick: { kind: "boolean", help: "fewer repetitions (a smoke run, not for reporting)" },
      json: {
        kind: "boolean",
        help: 'print {"machine", "rounds", "results": [{"system", "workload", "median", "ratios", …}]} as JSON',
      },
      threads: {
        kind: "string",
        help: "thread counts to run handprop and PyTorch with, comma-separated (default: 1 and every core)",
        meta: "N,N…",
      },
      rounds: { kind: "uint", help: "interleaved rounds (default 12; --quick: 2)", meta: "N" },
      only: {
        kind: "string",
        help: "run only these workloads, comma-separated (lenet5-train, lenet5-infer, conv3x3-fwd, …)",
        meta: "W,W…",
      },
    },
  },
  async (v) => {
    const benchMain = await loadBenchMain();
    return benchMain([
      ...(v.json ? ["--json"] : []),
      ...(v.quick ? ["--quick"] : []),
      ...(v.threads !== undefined ? [`--threads=${v.threads}`] : []),
      ...(v.rounds !== undefined ? [`--rounds=${String(v.rounds)}`] : []),
      ...(v.only !== undefined ? [`--only=${v.only}`] : []),
    ]);
  },
);
