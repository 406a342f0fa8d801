// `handprop bench`: the peer benchmark of bench/run.ts (handprop vs TensorFlow.js and ConvNetJS).


import { defineCommand } from "./args.ts";

export const benchCommand = defineCommand(
  {
    name: "bench",
    summary: "Benchmark LeNet-5 training/inference and conv layers against TensorFlow.js and ConvNetJS",
    flags: {
      quick: { kind: "boolean", help: "fewer repetitions (a smoke run, not for reporting)" },
      json: { kind: "boolean", help: 'print {"results": [{"system", "workload", "unit", "median", "min", "max"}]} as JSON' },
      threads: { kind: "string", help: "thread counts to run handprop with, comma-separated (default: 1 and every core)", meta: "N,N…" },
    },
  },
  async (v) => {
    // The peers are devDependencies and bench/ lives in the checkout, so load it only when asked.
    const { benchMain } = await import("../../bench/run.ts");
    return benchMain([...(v.json ? ["--json"] : []), ...(v.quick ? ["--quick"] : []), ...(v.threads !== undefined ? [`--threads=${v.threads}`] : [])]);
  },
);
