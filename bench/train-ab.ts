// A/B of two checkouts on whole training steps, interleaved: one persistent worker process per checkout
// (bench/train-ab-worker.ts), and in each round every (model, threads) workload runs once on A, then
// once on B, so drift on a shared machine cancels in the per-round ratio B ÷ A. Prints the median ratio
// of images/s with its quartiles, and each side's median images/s, with the CPU model — by the wall clock
// and per CPU-second of the worker process (all its threads; on one thread the steadier measure on a
// machine shared with other processes, on several it also counts time spent waiting for parts).
//
//   git archive <old commit> | tar -x -C /tmp/old && ln -s "$PWD/node_modules" /tmp/old/node_modules
//   (cd /tmp/old && node scripts/build-wasm.mjs)
//   node --import tsx bench/train-ab.ts /tmp/old . [--rounds 9] [--steps 6] [--models resnet-mini,bn-cnn]
//                                                [--threads 1,2]
//
// Timings are not tests.

import { spawn, type ChildProcessByStdio } from "node:child_process";
import { cpus } from "node:os";
import { createInterface, type Interface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { spread } from "./schedule.ts";

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}

const [rootA, rootB] = process.argv.slice(2, 4);
if (!rootA || !rootB) throw new Error("usage: train-ab.ts <checkout A (old)> <checkout B (new)> [--rounds N] …");
const rounds = Number(flag("rounds", "9"));
const steps = flag("steps", "6");
const models = flag("models", "resnet-mini,bn-cnn").split(",");
const threads = flag("threads", "1,2").split(",");

class Worker {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly lines: Interface;
  private readonly pending: ((line: string) => void)[] = [];

  constructor(root: string) {
    const script = fileURLToPath(new URL("./train-ab-worker.ts", import.meta.url));
    this.child = spawn(process.execPath, ["--import", "tsx", script, root], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.child.stdout });
    this.lines.on("line", (l) => this.pending.shift()?.(l));
  }

  /** [images/s, images per CPU-second] */
  run(model: string, n: string): Promise<number[]> {
    return new Promise((done) => {
      this.pending.push((l) => {
        done(l.split(" ").map(Number));
      });
      this.child.stdin.write(`${model} ${n} ${steps}\n`);
    });
  }

  close(): void {
    this.child.stdin.end();
  }
}

const a = new Worker(rootA);
const b = new Worker(rootB);
interface Series {
  a: number[];
  b: number[];
  ratio: number[];
}
const results = new Map<string, { wall: Series; cpu: Series }>();
const series = (): Series => ({ a: [], b: [], ratio: [] });
for (let r = 0; r < rounds; r++) {
  for (const model of models) {
    for (const n of threads) {
      const key = `${model} ${n} thread${n === "1" ? "" : "s"}`;
      const ia = await a.run(model, n);
      const ib = await b.run(model, n);
      const e = results.get(key) ?? { wall: series(), cpu: series() };
      [e.wall, e.cpu].forEach((s, i) => {
        s.a.push(ia[i]);
        s.b.push(ib[i]);
        s.ratio.push(ib[i] / ia[i]);
      });
      results.set(key, e);
    }
  }
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}
a.close();
b.close();
console.log(`CPU: ${cpus()[0]?.model ?? "unknown"} × ${cpus().length}; Node ${process.version}; ${rounds} rounds`);
console.log("workload                   clock   A img/s   B img/s   B÷A median (q1–q3, min–max)");
for (const [key, e] of results) {
  for (const [clock, s] of [
    ["wall", e.wall],
    ["cpu", e.cpu],
  ] as const) {
    const r = spread(s.ratio);
    const f = (v: number) => v.toFixed(3);
    console.log(
      `${key.padEnd(26)} ${clock.padEnd(5)} ${spread(s.a).median.toFixed(0).padStart(8)}  ` +
        `${spread(s.b).median.toFixed(0).padStart(8)}   ${f(r.median)} (${f(r.q1)}–${f(r.q3)}, ${f(r.min)}–${f(r.max)})`,
    );
  }
}
