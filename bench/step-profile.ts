// Where a training step's time goes on 1 thread and on n, layer by layer: the zoo model trains (batch 64,
// SGD lr 0.01, random digits) in rounds that alternate the thread counts in one process (1, n, 1, n, …), and
// each layer's forward and backward, the loss, the optimizer and the rest of the step (the trainer's checks,
// the JavaScript between calls) are timed in every round. Prints each one's median time per step on 1 and
// on n threads, their ratio, and what n threads lose against a perfect split (time on n − time on 1 ÷ n),
// largest loss first — the profile behind the README's account of LeNet-5's 2-thread scaling.
//
//   node --import tsx bench/step-profile.ts [--model lenet5] [--threads 2] [--steps 100] [--rounds 8]
//
// The wrappers cost a little on every call (performance.now twice), on both thread counts alike. Timings
// are not tests.

import { cpus } from "node:os";
import {
  Model,
  NDArray,
  RandomState,
  SGD,
  SoftmaxCrossEntropy,
  buildModel,
  setThreads,
  type Layer,
} from "../src/index.ts";
import { spread } from "./schedule.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const modelName = flag("model", "lenet5");
const threads = Number(flag("threads", "2"));
const steps = Number(flag("steps", "100"));
const rounds = Number(flag("rounds", "8"));
const BATCH = 64;

const rng = new RandomState(0);
const x = new NDArray(
  Float32Array.from({ length: BATCH * 784 }, () => rng.rand()),
  [BATCH, 1, 28, 28],
);
const y = Int32Array.from({ length: BATCH }, (_, i) => i % 10);
const model = buildModel(modelName);
const loss = new SoftmaxCrossEntropy();
const opt = new SGD({ lr: 0.01 });

let times = new Map<string, number>();
/** Replace o[method] by a version that adds its time to `name`'s total. */
function timed(o: object, method: string, name: string): void {
  const target = o as Record<string, (...args: unknown[]) => unknown>;
  const f = target[method].bind(o);
  target[method] = (...args: unknown[]) => {
    const t = performance.now();
    const r = f(...args);
    times.set(name, (times.get(name) ?? 0) + performance.now() - t);
    return r;
  };
}

// layers by node (a graph Model) or by position (Sequential), wrapped where the model calls them
const graph = model instanceof Model;
const layers: [string, Layer][] = graph
  ? model.nodes.map((n) => [`${n.name} ${n.layer.type}`, n.layer])
  : model.layers.map((l, i) => [`${String(i)} ${l.type}`, l]);
for (const [name, l] of layers) {
  timed(l, graph ? "forwardInputs" : "forward", `${name} F`);
  timed(l, graph ? "backwardInputs" : "backward", `${name} B`);
}
timed(loss, "forward", "loss F");
timed(loss, "backward", "loss B");
timed(opt, "step", "optimizer");

const perStep: Record<string, number[]>[] = [{}, {}]; // [1 thread, n threads]
for (let r = 0; r < rounds; r++) {
  for (const [k, t] of [1, threads].entries()) {
    await setThreads(t);
    for (let i = 0; i < 10; i++) model.trainBatch(x, y, loss, opt);
    times = new Map();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) model.trainBatch(x, y, loss, opt);
    const total = performance.now() - t0;
    let sum = 0;
    for (const v of times.values()) sum += v;
    times.set("rest of the step", total - sum);
    times.set("whole step", total);
    for (const [name, v] of times) (perStep[k][name] ??= []).push((v / steps) * 1000);
  }
}
await setThreads(1);

const median = (v: number[] | undefined) => spread(v ?? []).median;
const rows = Object.keys(perStep[0]).map((name) => {
  const one = median(perStep[0][name]);
  const n = median(perStep[1][name]);
  return { name, one, n, lost: n - one / threads };
});
rows.sort((a, b) => b.lost - a.lost);
const stepRatios = perStep[0]["whole step"].map((v, i) => v / perStep[1]["whole step"][i]);
console.log(
  `${modelName}, batch ${String(BATCH)}, ${String(rounds)} rounds of ${String(steps)} steps on 1 and ${String(threads)} ` +
    `threads alternating; ${cpus()[0]?.model ?? "?"}; µs per step (medians)`,
);
console.log(`${"".padEnd(30)} ${"1 thread".padStart(9)} ${`${String(threads)} threads`.padStart(10)}  ratio  lost`);
for (const r of rows) {
  console.log(
    `${r.name.padEnd(30)} ${r.one.toFixed(0).padStart(9)} ${r.n.toFixed(0).padStart(10)} ` +
      `${(r.one / r.n).toFixed(2).padStart(6)} ${r.lost.toFixed(0).padStart(5)}`,
  );
}
const s = spread(stepRatios);
console.log(
  `whole step, ${String(threads)} threads ÷ 1, per round: median ${s.median.toFixed(2)}× (IQR ${s.q1.toFixed(2)}–${s.q3.toFixed(2)})`,
);
process.exit(0);
