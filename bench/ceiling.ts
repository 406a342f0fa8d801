// The WebAssembly SIMD128 ceiling: how many GFLOP/s a multiply-add loop reaches on this machine, in this
// engine, on one thread — the yardstick for the kernels' efficiency (kernel GFLOP/s ÷ ceiling).
//
// WebAssembly SIMD128 has no fused multiply-add (relaxed SIMD's is not in Node 20 by default), so a
// multiply-add is an f32x4.mul followed by an f32x4.add: 8 FLOPs per pair. Two kinds of kernel, each
// hand-assembled below into a tiny module (no compiler between us and the instructions):
//
//   chains K   K independent chains acc_k ← acc_k·m + c (loop-invariant m = 0.5, c = 1, so every value
//              stays near 2 and never becomes denormal). A chain step waits for its mul and its add
//              (≈ 6–8 cycles of latency); K chains in flight hide that latency once K ≥ latency ×
//              (mul+add pairs issued per cycle). K is tried from 4 to 14: with two constants, 14 chains
//              fill the 16 XMM registers V8 allocates from.
//   gemm tile R×C   a GEMM microkernel's inner loop: an R × C block of C in R·C/4 accumulators; per step
//              C/4 f32x4 loads of B, R broadcast loads of A and R·C/4 mul+add pairs, walking a 16 KiB
//              panel that stays in L1 — what a register-blocked kernel reaches with its loads included.
//              Tiles 4×12, 5×8 (the shape of src/kernels/wasm/gemm.as) and 6×8. V8 keeps one XMM
//              register as scratch, so 15 hold values: 4×12 needs 16 and spills, 6×8 fills all 15.
//
// The ceiling is the best of these, picked once after warm-up; the benchmark then measures that kernel
// in every round of its interleaved schedule, so a round's efficiency compares figures taken seconds apart.

/** One hand-assembled kernel: `run(iterations)` executes `flopsPerIteration` FLOPs per iteration. */
export interface CeilingKernel {
  name: string;
  /** The function's name in the module (ceilingModuleBytes). */
  exportName: string;
  flopsPerIteration: number;
  /** Runs the loop `iterations` times (≥ 1) and returns a checksum (the sum of lane 0 of every accumulator). */
  run(iterations: number): number;
}

const V128 = 0x7b;
const I32 = 0x7f;
const F32 = 0x7d;

/** Unsigned LEB128. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (for i32.const). */
function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

function f32Bytes(v: number): number[] {
  return [...new Uint8Array(Float32Array.of(v).buffer)];
}

const op = {
  localGet: (i: number) => [0x20, ...uleb(i)],
  localSet: (i: number) => [0x21, ...uleb(i)],
  localTee: (i: number) => [0x22, ...uleb(i)],
  i32Const: (v: number) => [0x41, ...sleb(v)],
  f32Const: (v: number) => [0x43, ...f32Bytes(v)],
  i32Add: [0x6a],
  i32Sub: [0x6b],
  i32And: [0x71],
  f32Add: [0x92],
  loop: [0x03, 0x40],
  brIf: (depth: number) => [0x0d, ...uleb(depth)],
  end: [0x0b],
  // SIMD instructions: prefix 0xfd, then the opcode as unsigned LEB128 (memarg = align log2, offset)
  v128Load: (offset: number) => [0xfd, ...uleb(0x00), 4, ...uleb(offset)],
  v128Load32Splat: (offset: number) => [0xfd, ...uleb(0x09), 2, ...uleb(offset)],
  f32x4Splat: [0xfd, ...uleb(0x13)],
  f32x4ExtractLane: (lane: number) => [0xfd, ...uleb(0x1f), lane],
  f32x4Add: [0xfd, ...uleb(0xe4)],
  f32x4Mul: [0xfd, ...uleb(0xe6)],
};

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
}

/** A module with one memory page and functions (i32 iterations) → f32, exported under their names. */
function assemble(funcs: { name: string; locals: [number, number][]; body: number[] }[]): Uint8Array<ArrayBuffer> {
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec([[0x60, ...vec([[I32]]), ...vec([[F32]])]])),
    ...section(3, vec(funcs.map(() => [0]))),
    ...section(5, vec([[0x00, 1]])),
    ...section(7, vec([...funcs.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]), [...name("memory"), 0x02, 0]])),
    ...section(
      10,
      vec(
        funcs.map((f) => {
          const body = [...vec(f.locals.map(([count, type]) => [...uleb(count), type])), ...f.body, ...op.end];
          return [...uleb(body.length), ...body];
        }),
      ),
    ),
  ];
  return Uint8Array.from(bytes);
}

/** Sum of lane 0 of the accumulators in locals first..first+count−1 (keeps them alive). */
function checksum(first: number, count: number): number[] {
  const out: number[] = [...op.localGet(first), ...op.f32x4ExtractLane(0)];
  for (let k = 1; k < count; k++) out.push(...op.localGet(first + k), ...op.f32x4ExtractLane(0), ...op.f32Add);
  return out;
}

/** Loop tail: n ← n − 1; continue while n ≠ 0 (local 0 is the iteration count). */
const countDown = [...op.localGet(0), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(0), ...op.brIf(0), ...op.end];

/** K chains acc_k ← acc_k·m + c. Locals: 0 = n, 1..K = acc, K+1 = m, K+2 = c. */
function chainsFunc(K: number): { name: string; locals: [number, number][]; body: number[] } {
  const m = K + 1,
    c = K + 2;
  const body: number[] = [
    ...op.f32Const(0.5),
    ...op.f32x4Splat,
    ...op.localSet(m),
    ...op.f32Const(1),
    ...op.f32x4Splat,
    ...op.localSet(c),
  ];
  for (let k = 0; k < K; k++) body.push(...op.f32Const(k), ...op.f32x4Splat, ...op.localSet(1 + k));
  body.push(...op.loop);
  for (let k = 0; k < K; k++) {
    body.push(
      ...op.localGet(1 + k),
      ...op.localGet(m),
      ...op.f32x4Mul,
      ...op.localGet(c),
      ...op.f32x4Add,
      ...op.localSet(1 + k),
    );
  }
  body.push(...countDown, ...checksum(1, K));
  return { name: `chains${K}`, locals: [[K + 2, V128]], body };
}

/** Bytes of the panel the tile kernels walk, and the bytes of one step (B's vectors, then A's scalars). */
export const PANEL_BYTES = 16384;
export const STEP_BYTES = 64;

/**
 * A GEMM microkernel step on a rows × (4·vectors) tile of C. Locals: 0 = n, 1 = p, then the accumulators
 * acc[i][j] (i < rows, j < vectors), the vectors b_j and a. Per step: b_j = load(p + 16j),
 * a_i = splat(load32(p + 16·vectors + 4i)), acc[i][j] += a_i · b_j; p ← (p + 64) mod PANEL_BYTES.
 */
function tileFunc(rows: number, vectors: number): { name: string; locals: [number, number][]; body: number[] } {
  const count = rows * vectors;
  const acc = (i: number, j: number) => 2 + vectors * i + j;
  const b = (j: number) => 2 + count + j;
  const a = 2 + count + vectors;
  const body: number[] = [];
  for (let k = 0; k < count; k++) body.push(...op.f32Const(0), ...op.f32x4Splat, ...op.localSet(2 + k));
  body.push(...op.loop);
  for (let j = 0; j < vectors; j++) body.push(...op.localGet(1), ...op.v128Load(16 * j), ...op.localSet(b(j)));
  for (let i = 0; i < rows; i++) {
    body.push(...op.localGet(1), ...op.v128Load32Splat(16 * vectors + 4 * i), ...op.localSet(a));
    for (let j = 0; j < vectors; j++) {
      body.push(
        ...op.localGet(acc(i, j)),
        ...op.localGet(a),
        ...op.localGet(b(j)),
        ...op.f32x4Mul,
        ...op.f32x4Add,
        ...op.localSet(acc(i, j)),
      );
    }
  }
  body.push(
    ...op.localGet(1),
    ...op.i32Const(STEP_BYTES),
    ...op.i32Add,
    ...op.i32Const(PANEL_BYTES - 1),
    ...op.i32And,
    ...op.localSet(1),
  );
  body.push(...countDown, ...checksum(2, count));
  return {
    name: `tile${String(rows)}x${String(vectors)}`,
    locals: [
      [1, I32],
      [count + vectors + 1, V128],
    ],
    body,
  };
}

export const CHAIN_COUNTS = [4, 6, 8, 10, 12, 14] as const;
/** The GEMM tiles tried, [rows, vectors]: 5×2 is the shape of src/kernels/wasm/gemm.as's tile8. */
export const TILES = [
  [4, 2],
  [3, 3],
  [4, 3],
  [5, 2],
  [6, 2],
] as const;

/** The module's bytes (exported for the tests, which check the encoding computes what it says). */
export function ceilingModuleBytes(): Uint8Array<ArrayBuffer> {
  return assemble([...CHAIN_COUNTS.map(chainsFunc), ...TILES.map(([r, v]) => tileFunc(r, v))]);
}

/**
 * Instantiates the ceiling kernels (null when this engine has no WebAssembly SIMD). The tile kernels'
 * panel is filled with (i mod 97 + 1)/1024, small enough that no accumulator overflows.
 */
export function ceilingKernels(): CeilingKernel[] | null {
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(new WebAssembly.Module(ceilingModuleBytes()));
  } catch {
    return null;
  }
  const ex = instance.exports as Record<string, unknown>;
  const memory = ex.memory as WebAssembly.Memory;
  const panel = new Float32Array(memory.buffer, 0, PANEL_BYTES / 4 + 16);
  for (let i = 0; i < panel.length; i++) panel[i] = panelValue(i);
  const fn = (n: string) => ex[n] as (iterations: number) => number;
  return [
    ...CHAIN_COUNTS.map((K) => ({
      name: `chains ${K}`,
      exportName: `chains${K}`,
      flopsPerIteration: 8 * K,
      run: fn(`chains${K}`),
    })),
    ...TILES.map(([r, v]) => ({
      name: `gemm tile ${String(r)}×${String(4 * v)}`,
      exportName: `tile${String(r)}x${String(v)}`,
      flopsPerIteration: 8 * r * v,
      run: fn(`tile${String(r)}x${String(v)}`),
    })),
  ];
}

/** The panel's float32 values as ceilingKernels fills them (for the tests' reference computation). */
export function panelValue(index: number): number {
  return Math.fround(((index % 97) + 1) / 1024);
}

/**
 * The ceiling kernel on several threads at once: this thread and `threads − 1` workers each run the same
 * kernel for the same iterations, started together; `run()` returns when the last one finishes. Its rate ÷
 * the 1-thread rate is the machine's own parallel speed-up at that moment — what a perfectly split kernel
 * could reach — which the benchmark measures in the rounds beside handprop's: on a VM whose second core
 * comes and goes, a scaling figure means little without it.
 */
export interface ParallelCeiling {
  threads: number;
  run(): void;
  close(): Promise<void>;
}

// The workers' source (no imports: a worker does not inherit tsx): they instantiate the same module, copy in
// the same panel, run the kernel each time the control word's generation moves on, then count themselves
// finished; generation −1 ends them.
const CEILING_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { module, exportName, iterations, panel, control: buffer } = workerData;
const instance = new WebAssembly.Instance(module);
new Float32Array(instance.exports.memory.buffer, 0, panel.length).set(panel);
const run = instance.exports[exportName];
const control = new Int32Array(buffer);
run(iterations);
parentPort.postMessage("ready");
for (let seen = Atomics.load(control, 0); ; ) {
  Atomics.wait(control, 0, seen);
  seen = Atomics.load(control, 0);
  if (seen < 0) break;
  run(iterations);
  Atomics.add(control, 1, 1);
  Atomics.notify(control, 1);
}
`;

export async function startParallelCeiling(
  kernel: CeilingKernel,
  iterations: number,
  threads: number,
): Promise<ParallelCeiling> {
  const { Worker } = await import("node:worker_threads");
  // [0]: generation (a new run each increment; −1: stop), [1]: workers finished in this generation
  const control = new Int32Array(new SharedArrayBuffer(8));
  const module = new WebAssembly.Module(ceilingModuleBytes());
  const panel = Float32Array.from({ length: PANEL_BYTES / 4 + 16 }, (_, i) => panelValue(i));
  const workerData = { module, exportName: kernel.exportName, iterations, panel, control: control.buffer };
  const workers = Array.from({ length: threads - 1 }, () => new Worker(CEILING_WORKER, { eval: true, workerData }));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            w.once("message", () => {
              resolve();
            });
            w.once("error", reject);
            w.once("exit", (code) => {
              reject(new Error(`ceiling worker exited (${String(code)}) before it was ready`));
            });
          }),
      ),
    );
  } catch (e) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw e;
  }
  return {
    threads,
    run() {
      Atomics.store(control, 1, 0);
      Atomics.add(control, 0, 1);
      Atomics.notify(control, 0);
      kernel.run(iterations);
      for (let done = Atomics.load(control, 1); done < threads - 1; done = Atomics.load(control, 1)) {
        Atomics.wait(control, 1, done);
      }
    },
    async close() {
      Atomics.store(control, 0, -1);
      Atomics.notify(control, 0);
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
