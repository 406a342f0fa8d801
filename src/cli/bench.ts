// `handprop bench`: the interleaved peer benchmark of bench/run.ts (handprop vs PyTorch, TensorFlow.js,
// ConvNetJS, NumPy and the WebAssembly SIMD ceiling).


import { defineCommand } from "./args.ts";

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
    // The peers are devDependencies and bench/ lives in the checkout, so load it only when asked.
    const { benchMain } = await import("../../bench/run.ts");
    return benchMain([
      ...(v.json ? ["--json"] : []),
      ...(v.quick ? ["--quick"] : []),
      ...(v.threads !== undefined ? [`--threads=${v.threads}`] : []),
      ...(v.rounds !== undefined ? [`--rounds=${String(v.rounds)}`] : []),
      ...(v.only !== undefined ? [`--only=${v.only}`] : []),
    ]);
  },
);
