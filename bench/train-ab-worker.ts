// The worker of bench/train-ab.ts: loads handprop from the checkout given as argv[2], then answers lines
// "<model> <threads> <steps>" on stdin with one line "<images/s> <images/CPU-s>" — training steps (batch 64,
// Adam, random digits) after one untimed step, by the wall clock and by the process's CPU time (every
// thread's: on a machine shared with other processes, CPU time leaves out the time they held the cores).
// Models: the zoo's names, "bn-cnn" and "norm-cnn".

import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

type Handprop = typeof import("../src/index.ts");
const hp = (await import(pathToFileURL(resolve(process.argv[2], "src/index.ts")).href)) as Handprop;
const BATCH = 64;

/** conv5×5 1→32 same → BN → ReLU → maxpool → conv5×5 32→64 same → BN → ReLU → maxpool → dense 128 → ReLU → dense 10. */
function bnCnn(): InstanceType<Handprop["Sequential"]> {
  return new hp.Sequential(
    [
      new hp.Conv2D({ outChannels: 32, kernelSize: 5, padding: "same", bias: false }),
      new hp.BatchNorm2D({}),
      new hp.ReLU(),
      new hp.MaxPool2D({ kernelSize: 2 }),
      new hp.Conv2D({ outChannels: 64, kernelSize: 5, padding: "same", bias: false }),
      new hp.BatchNorm2D({}),
      new hp.ReLU(),
      new hp.MaxPool2D({ kernelSize: 2 }),
      new hp.Flatten(),
      new hp.Dense({ outFeatures: 128 }),
      new hp.ReLU(),
      new hp.Dense({ outFeatures: 10 }),
    ],
    { inputShape: [1, 28, 28], seed: 0 },
  );
}

/** conv3×3 1→16 same → GroupNorm(4) → ReLU → maxpool → conv3×3 16→32 same → GroupNorm(8) → ReLU → maxpool →
 * dense 64 → LayerNorm → ReLU → dense 10. */
function normCnn(): InstanceType<Handprop["Sequential"]> {
  return new hp.Sequential(
    [
      new hp.Conv2D({ outChannels: 16, kernelSize: 3, padding: "same" }),
      new hp.GroupNorm({ groups: 4 }),
      new hp.ReLU(),
      new hp.MaxPool2D({ kernelSize: 2 }),
      new hp.Conv2D({ outChannels: 32, kernelSize: 3, padding: "same" }),
      new hp.GroupNorm({ groups: 8 }),
      new hp.ReLU(),
      new hp.MaxPool2D({ kernelSize: 2 }),
      new hp.Flatten(),
      new hp.Dense({ outFeatures: 64 }),
      new hp.LayerNorm({}),
      new hp.ReLU(),
      new hp.Dense({ outFeatures: 10 }),
    ],
    { inputShape: [1, 28, 28], seed: 0 },
  );
}

const BUILT: Record<string, () => Model> = { "bn-cnn": bnCnn, "norm-cnn": normCnn };

type Model = ReturnType<typeof bnCnn>;
const models = new Map<string, { model: Model; optimizer: InstanceType<Handprop["Adam"]> }>();
const rng = new hp.RandomState(0);
const x = new hp.NDArray(new Float32Array(BATCH * 28 * 28), [BATCH, 1, 28, 28]);
for (let i = 0; i < x.size; i++) x.data[i] = rng.random();
const labels = Int32Array.from({ length: BATCH }, () => rng.randint(0, 10));
const loss = new hp.SoftmaxCrossEntropy();

for await (const line of createInterface({ input: process.stdin })) {
  const [name, threads, steps] = line.trim().split(/\s+/);
  let entry = models.get(name);
  if (entry === undefined) {
    const model = BUILT[name]?.() ?? hp.buildModel(name, { seed: 0 });
    entry = { model, optimizer: new hp.Adam({ lr: 1e-3 }) };
    models.set(name, entry);
  }
  const { model, optimizer } = entry;
  await hp.setThreads(Number(threads));
  model.trainBatch(x, labels, loss, optimizer);
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let s = 0; s < Number(steps); s++) model.trainBatch(x, labels, loss, optimizer);
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const images = BATCH * Number(steps);
  process.stdout.write(`${images / wall} ${images / ((c.user + c.system) / 1e6)}\n`);
}
