// What augmentation costs next to training: a 64-image batch of 28×28 MNIST-like images augmented
// (affine; affine + elastic) against one LeNet-5 training step on a batch of the same size — on the
// WebAssembly kernels over the kernel threads (the default) and on the TypeScript reference (setBackend("js")
// around the call only; the training step always runs on the default backend).
// The systems alternate within each round (A, B, C, A, B, C, …) and the report is the median of the
// per-round ratios, so drift in machine load hits all of them alike.
//
//   node --import tsx scripts/bench-augment.ts [--rounds N] [--reps N] [--threads N]

import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Augmenter } from "../src/data/augment.ts";
import { buildModel } from "../src/nn/models.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { getBackend, setBackend, setThreads } from "../src/kernels/backend.ts";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "15" },
    reps: { type: "string", default: "10" },
    threads: { type: "string", default: "2" },
  },
});
const rounds = Number(values.rounds);
const reps = Number(values.reps);
const threads = await setThreads(Number(values.threads));

const rng = new RandomState(0);
const background = (0 - 0.1307) / 0.3081;
const pixels = Float32Array.from({ length: 64 * 784 }, () => rng.random() * 3 + background);
const x = new NDArray(pixels, [64, 1, 28, 28]);
const y = Int32Array.from({ length: 64 }, (_, i) => i % 10);
const model = buildModel("lenet5", { seed: 0 });
const loss = new SoftmaxCrossEntropy();
const optimizer = new Adam({ lr: 1e-3 });
const affineOptions = { shift: 2, rotation: 10, scale: 0.1, shear: 10, fill: background, seed: 1 };
const affine = new Augmenter(affineOptions);
const elastic = new Augmenter({ ...affineOptions, elastic: { alpha: 34, sigma: 4 } });

const backend = getBackend();
const onReference = (a: Augmenter) => () => {
  setBackend("js");
  try {
    a.apply(x);
  } finally {
    setBackend(backend);
  }
};
const systems: [string, () => void][] = [
  ["LeNet-5 train step", () => model.trainBatch(x, y, loss, optimizer)],
  [`augment (affine), ${backend}`, () => affine.apply(x)],
  [`augment (affine + elastic), ${backend}`, () => elastic.apply(x)],
  ["augment (affine), js reference", onReference(affine)],
  ["augment (affine + elastic), js reference", onReference(elastic)],
];
const time = (f: () => void): number => {
  const t0 = performance.now();
  for (let i = 0; i < reps; i++) f();
  return (performance.now() - t0) / reps;
};
for (const [, f] of systems) time(f); // warm-up
const perRound: number[][] = systems.map(() => []);
for (let r = 0; r < rounds; r++) systems.forEach(([, f], i) => perRound[i].push(time(f)));
const median = (a: number[]) => {
  const s = a.slice().sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const step = perRound[0];
const cpu = `${cpus()[0]?.model ?? "unknown"} ×${cpus().length}`;
console.log(`CPU: ${cpu}; backend ${getBackend()}, ${threads} thread(s); ${rounds} rounds × ${reps} reps`);
systems.forEach(([name], i) => {
  const ratios = perRound[i].map((t, r) => t / step[r]).sort((p, q) => p - q);
  const ms = median(perRound[i]).toFixed(2);
  const spread = `${ratios[0].toFixed(3)}–${ratios[ratios.length - 1].toFixed(3)}`;
  const ratio = `ratio to a train step ${median(ratios).toFixed(3)} (${spread})`;
  console.log(`${name.padEnd(42)} median ${ms.padStart(6)} ms per 64-image batch   ${ratio}`);
});
for (const [kernel, reference] of [
  [1, 3],
  [2, 4],
]) {
  const ratio = median(perRound[kernel].map((t, r) => t / perRound[reference][r]));
  console.log(`${systems[kernel][0]} ÷ js reference, per round: median ${ratio.toFixed(3)}`);
}
console.log(
  `load average: ${loadavg()
    .map((l) => l.toFixed(1))
    .join(", ")}`,
);
