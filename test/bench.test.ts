// The interleaved benchmark's machinery (bench/): statistics, the hand-assembled ceiling kernels, the
// Python worker's protocol, and a smoke run of `handprop bench`. No speed is asserted anywhere.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { roundRatios, runSchedule, spread, type Contender, type Workload } from "../bench/schedule.ts";
import {
  CHAIN_COUNTS,
  PANEL_BYTES,
  STEP_BYTES,
  TILES,
  ceilingKernels,
  panelValue,
  type CeilingKernel,
} from "../bench/ceiling.ts";
import { PythonWorker, startPythonPeers } from "../bench/python.ts";

const bin = new URL("../bin/handprop.mjs", import.meta.url).pathname;

test("spread: median, quartiles (NumPy's linear interpolation), min, max", () => {
  assert.deepEqual(spread([4, 1, 3, 2]), { median: 2.5, q1: 1.75, q3: 3.25, min: 1, max: 4, n: 4 });
  assert.deepEqual(spread([7]), { median: 7, q1: 7, q3: 7, min: 7, max: 7, n: 1 });
  assert.equal(spread([]).n, 0);
  assert.ok(Number.isNaN(spread([]).median));
});

test("roundRatios pairs rounds and skips rounds where either side did not run", () => {
  assert.deepEqual(roundRatios([2, 4, NaN, 9], [1, 2, 3, 3]), [2, 2, 3]);
  assert.deepEqual(roundRatios([1, 1], [0, NaN]), []);
});

test("runSchedule alternates contenders round by round and limits slow ones to slowRounds", async () => {
  const order: string[] = [];
  const make = (system: string, seconds: number): Contender => ({
    system,
    role: system === "h" ? "handprop" : "peer",
    threads: 1,
    unitsPerCall: 1,
    turn: (calls) => {
      order.push(system);
      return Promise.resolve(calls * seconds);
    },
  });
  const w: Workload = {
    id: "w",
    title: "w",
    unit: "u/s",
    contenders: [make("h", 0.01), make("p", 0.02), make("slow", 5)],
    unavailable: [],
  };
  const m = await runSchedule([w], {
    rounds: 4,
    turnSeconds: 0.1,
    warmupCalls: 0,
    maxCallsPerTurn: 50,
    slowCallSeconds: 1,
    slowRounds: 2,
  });
  assert.deepEqual(order, ["h", "p", "slow", "h", "p", "slow", "h", "p", "slow", "h", "p", "h", "p"]);
  const [h, p, slow] = m.get(w)!;
  assert.equal(h.callsPerTurn, 10);
  assert.equal(p.callsPerTurn, 5);
  assert.ok(slow.slow);
  assert.deepEqual(h.rates.map(Math.round), [100, 100, 100, 100]);
  assert.deepEqual(slow.rates.slice(2).map(Number.isNaN), [true, true]);
});

test("the ceiling kernels compute what they claim (float32 reference, lane 0 of every accumulator)", () => {
  const kernels = ceilingKernels();
  if (kernels === null) return; // no WebAssembly SIMD: the benchmark says so in its row
  for (const K of CHAIN_COUNTS) {
    const k: CeilingKernel = kernels.find((c) => c.name === `chains ${String(K)}`)!;
    assert.equal(k.flopsPerIteration, 8 * K);
    for (const n of [1, 3, 40]) {
      let sum = 0;
      for (let c = 0; c < K; c++) {
        let acc = c;
        for (let i = 0; i < n; i++) acc = Math.fround(Math.fround(acc * 0.5) + 1);
        sum = c === 0 ? acc : Math.fround(sum + acc);
      }
      assert.equal(k.run(n), sum, `chains ${String(K)}, ${String(n)} iterations`);
    }
  }
  for (const [rows, vectors] of TILES) {
    const g: CeilingKernel = kernels.find((c) => c.name === `gemm tile ${String(rows)}×${String(4 * vectors)}`)!;
    for (const n of [1, 2, PANEL_BYTES / STEP_BYTES + 3]) {
      // acc[i][j] lane 0 += a_i · b_j lane 0: a_i = panel[p/4 + 4·vectors + i], b_j lane 0 = panel[p/4 + 4j]
      const acc = new Array<number>(rows * vectors).fill(0);
      for (let s = 0, p = 0; s < n; s++, p = (p + STEP_BYTES) % PANEL_BYTES) {
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < vectors; j++) {
            const product = Math.fround(panelValue(p / 4 + 4 * vectors + i) * panelValue(p / 4 + 4 * j));
            acc[vectors * i + j] = Math.fround(acc[vectors * i + j] + product);
          }
        }
      }
      const expected = acc.reduce((a, v, i) => (i === 0 ? v : Math.fround(a + v)), 0);
      assert.equal(g.run(n), expected, `${g.name}, ${String(n)} steps`);
    }
  }
});

test("the Python worker answers its line protocol, and reports errors without dying", async (t) => {
  const peers = await startPythonPeers();
  try {
    const w = peers.torch ?? peers.numpy;
    if (!w) {
      t.skip("no python3 with torch or numpy+scipy here");
      return;
    }
    const worker = w.worker;
    await assert.rejects(worker.request({ cmd: "frobnicate" }, 10_000), /unknown command 'frobnicate'/);
    await assert.rejects(worker.request({ cmd: "run", id: "nothing", calls: 1 }, 10_000), /was not set up/);
    if (peers.torch) {
      await peers.torch.worker.request({ cmd: "setup", id: "g", kind: "gemm", M: 8, N: 8, K: 8 }, 30_000);
      const r = await peers.torch.worker.request({ cmd: "run", id: "g", threads: 1, calls: 3, warmup: 1 }, 30_000);
      assert.ok(typeof r.seconds === "number" && r.seconds > 0);
    }
  } finally {
    peers.close();
  }
});

test("a python that does not exist is not a peer (no crash, no hang)", async () => {
  assert.equal(await PythonWorker.start("/nonexistent/python3"), null);
  const peers = await startPythonPeers(["/nonexistent/python3"]);
  assert.equal(peers.torch, null);
  assert.equal(peers.numpy, null);
  peers.close();
});

/** `handprop bench --quick --json …args`, which must succeed: its parsed report. */
function benchJson(...args: string[]): unknown {
  const r = spawnSync(process.execPath, [bin, "bench", "--quick", "--json", ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("handprop bench --threads 1,2: the 2-thread row carries its per-round scaling, and the machine's beside it", () => {
  const report = benchJson("--rounds", "2", "--threads", "1,2", "--only", "gemm256,lenet5-infer");
  type Row = {
    system: string;
    workload: string;
    role: string;
    threads: number;
    scaling?: { median: number; n: number };
    scalingOfMachine?: { median: number; n: number };
    efficiency?: { median: number };
  };
  const all = (report as { results: Row[] }).results;
  for (const workload of ["gemm256", "lenet5-infer"]) {
    const rows = all.filter((x) => x.workload === workload);
    const two = rows.find((x) => x.system === "handprop (2 threads)");
    assert.ok(two?.scaling !== undefined && two.scaling.n === 2 && two.scaling.median > 0, JSON.stringify(two));
    assert.equal(rows.find((x) => x.system === "handprop (1 thread)")?.scaling, undefined);
    if (!rows.some((x) => x.role === "ceiling")) continue; // no WebAssembly SIMD
    // the ceiling on 2 threads at once, run in the same rounds: the machine's own speed-up, and handprop's
    // scaling over it round by round
    const machine = rows.find((x) => x.role === "ceiling" && x.threads === 2);
    assert.ok(machine?.scaling !== undefined && machine.scaling.n === 2 && machine.scaling.median > 0);
    assert.ok(two.scalingOfMachine !== undefined && two.scalingOfMachine.n === 2 && two.scalingOfMachine.median > 0);
    // efficiency (GFLOP/s ÷ the ceiling's) only where the workload is counted in GFLOP/s
    assert.equal(
      rows.find((x) => x.system === "handprop (1 thread)")?.efficiency !== undefined,
      workload === "gemm256",
    );
  }
});

test("handprop bench --quick --json: interleaved rows with ratios and efficiency", () => {
  const j = benchJson("--rounds", "1", "--threads", "1", "--only", "gemm256,article-1000,conv3x3-fwd") as {
    machine: { cpu: string; flags: string; node: string; v8: string };
    rounds: number;
    results: {
      system: string;
      workload: string;
      role: string;
      median: number | null;
      ratios?: { handprop: string; median: number }[];
      efficiency?: { median: number };
      note?: string;
    }[];
  };
  assert.equal(j.rounds, 1);
  assert.ok(j.machine.cpu.length > 0 && j.machine.v8.length > 0);
  const gemm = j.results.filter((x) => x.workload === "gemm256");
  const hp = gemm.find((x) => x.system === "handprop (1 thread)")!;
  assert.ok(hp.median !== null && hp.median > 0);
  if (gemm.some((x) => x.role === "ceiling")) assert.ok(hp.efficiency !== undefined && hp.efficiency.median > 0);
  // the conv workloads also time the GEMM convolution (setConvAlgorithm("direct")), for its own efficiency
  const conv = j.results.filter((x) => x.workload === "conv3x3-fwd");
  const gemmConv = conv.find((x) => x.system === "handprop, GEMM convolution (1 thread)");
  assert.ok(gemmConv?.median != null && gemmConv.median > 0, JSON.stringify(conv.map((x) => x.system)));
  if (conv.some((x) => x.role === "ceiling")) assert.ok(gemmConv.efficiency !== undefined);
  // and once more with x and dy resident in the kernels' memory, as a model's pass keeps them
  const resident = conv.find((x) => x.system === "handprop, GEMM convolution, resident operands (1 thread)");
  assert.ok(resident?.median != null && resident.median > 0, JSON.stringify(conv.map((x) => x.system)));
  for (const peer of j.results.filter((x) => x.role === "peer")) {
    if (peer.median === null) assert.ok(peer.note, `${peer.system} has neither figures nor a note`);
    else
      assert.ok(
        peer.ratios?.some((q) => q.handprop === "handprop (1 thread)" && q.median > 0),
        `${peer.system} carries no ratio`,
      );
  }
  assert.ok(
    j.results.some((x) => x.system.startsWith("PyTorch")),
    "a PyTorch row (figures or 'not available')",
  );
});

test("handprop bench: usage errors exit 2 with one line", () => {
  for (const [args, pattern] of [
    [["--only", "nope"], /unknown workload 'nope'/],
    [["--rounds", "0"], /--rounds expects an integer 1\.\.1000/],
    [["--threads", "0"], /--threads expects/],
  ] as const) {
    const r = spawnSync(process.execPath, [bin, "bench", ...args], { encoding: "utf8", timeout: 60_000 });
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
  }
});
