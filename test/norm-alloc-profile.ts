// The allocation profile (alloc-profile.ts) of a small model that runs both segment normalisations on the
// wasm kernels: Conv2D → GroupNorm → ReLU → MaxPool2D → Flatten → Dense → LayerNorm → ReLU → Dense.
// Prints the report as JSON; test/groupnorm-kernels.test.ts runs it in a fresh process.
//
//   node --import tsx test/norm-alloc-profile.ts [--threads 1|2] [--steps 40] [--windows 3]

import { profileTraining } from "./alloc-profile.ts";
import { normModel } from "./norm-model.ts";

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const report = await profileTraining({
  threads: arg("threads", 1),
  batch: arg("batch", 16),
  warmup: arg("warmup", 300),
  steps: arg("steps", 40),
  windows: arg("windows", 3),
  interval: arg("interval", 128),
  build: () => normModel([1, 28, 28], 10, 0),
});
console.log(JSON.stringify(report));
