// Tests for the kernel backends (src/kernels/backend.ts, wasm.ts, wasm/*.as): GEMM on both paths
// against a naive float64 reference over randomized shapes (odd sizes, transposes, α/β, offsets and
// leading dimensions); the wasm GEMM's fixed summation order (bit-exact against a sequential float32
// reference, independent of blocking and of which rows are computed together); Conv2D, Dense, MaxPool2D
// and ReLU on the wasm backend against the references and the JS path; memory growth; bit-identical
// training; the backend switch and the fallbacks when the module is missing; the Kernels interface
// (kernels.ts): needDx honoured by every backend, backwards sent to their forward's backend, no backend
// selection in the layers.

import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { gemm, gemmJS } from "../src/kernels/gemm.ts";
import { getBackend, kernels, setBackend, wasmAvailable, type BackendName } from "../src/kernels/backend.ts";
import { jsBackend } from "../src/kernels/js.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import type { Kernels, PoolGeometry } from "../src/kernels/kernels.ts";
import { WasmReLU, loadKernels, simdSupported, wasmKernels, wasmMemory, wasmMemoryBytes } from "../src/kernels/wasm.ts";
import { conv2dBackwardRef, conv2dForwardRef } from "../src/kernels/js.ts";
import { Conv2D, type Conv2DPadding } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";

const EPS32 = 2 ** -24; // unit roundoff of float32
const initialBackend = getBackend();
const hasWasm = wasmAvailable();
const BACKENDS: BackendName[] = hasWasm ? ["js", "wasm"] : ["js"];

afterEach(() => {
  setBackend(initialBackend);
});

function rand(rng: RandomState, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.random() - 1;
  return a;
}

function randn(rng: RandomState, shape: readonly number[]): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.standardNormal();
  return new NDArray(data, shape);
}

interface GemmCase {
  tA: boolean;
  tB: boolean;
  M: number;
  N: number;
  K: number;
  alpha: number;
  beta: number;
  aOff: number;
  bOff: number;
  cOff: number;
  lda: number;
  ldb: number;
  ldc: number;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
}

function gemmCase(
  rng: RandomState,
  M: number,
  N: number,
  K: number,
  tA: boolean,
  tB: boolean,
  alpha: number,
  beta: number,
  pad: boolean,
): GemmCase {
  const extra = () => (pad ? rng.randint(0, 4) : 0);
  const [aRows, aCols] = tA ? [K, M] : [M, K];
  const [bRows, bCols] = tB ? [N, K] : [K, N];
  const lda = aCols + extra(),
    ldb = bCols + extra(),
    ldc = N + extra();
  const aOff = extra(),
    bOff = extra(),
    cOff = extra();
  const A = rand(rng, aOff + aRows * lda + extra());
  const B = rand(rng, bOff + bRows * ldb + extra());
  const C = rand(rng, cOff + M * ldc + extra());
  return { tA, tB, M, N, K, alpha, beta, aOff, bOff, cOff, lda, ldb, ldc, A, B, C };
}

function runGemm(c: GemmCase, C: Float32Array): void {
  gemm(c.tA, c.tB, c.M, c.N, c.K, c.alpha, c.A, c.aOff, c.lda, c.B, c.bOff, c.ldb, c.beta, C, c.cOff, c.ldc);
}

const aAt = (c: GemmCase, i: number, k: number) => (c.tA ? c.A[c.aOff + k * c.lda + i] : c.A[c.aOff + i * c.lda + k]);
const bAt = (c: GemmCase, k: number, j: number) => (c.tB ? c.B[c.bOff + j * c.ldb + k] : c.B[c.bOff + k * c.ldb + j]);

/**
 * Check C against the float64 reference β·C₀ + α·Σ_k a·b with the standard bound for a float32 dot
 * product: |error| ≤ γ·(|α|·Σ_k |a·b| + |β·C₀|), γ = 2·(K + 2)·ε, whatever the summation order. Entries
 * outside the M×N window (offsets, leading dimensions) must be untouched.
 */
function checkGemm(c: GemmCase, C: Float32Array, what: string): void {
  const gamma = 2 * (c.K + 2) * EPS32;
  const inside = new Uint8Array(C.length);
  for (let i = 0; i < c.M; i++) {
    for (let j = 0; j < c.N; j++) {
      const idx = c.cOff + i * c.ldc + j;
      inside[idx] = 1;
      let s = 0;
      let mag = 0;
      for (let k = 0; k < c.K; k++) {
        const p = aAt(c, i, k) * bAt(c, k, j);
        s += p;
        mag += Math.abs(p);
      }
      const c0 = c.beta === 0 ? 0 : c.beta * c.C[idx];
      const want = c0 + c.alpha * s;
      const tol = gamma * (Math.abs(c.alpha) * mag + Math.abs(c0)) + 1e-30;
      if (!(Math.abs(C[idx] - want) <= tol)) {
        assert.fail(`${what}: C[${i},${j}] = ${C[idx]}, expected ${want} ± ${tol}`);
      }
    }
  }
  for (let idx = 0; idx < C.length; idx++) {
    if (!inside[idx] && !Object.is(C[idx], c.C[idx])) assert.fail(`${what}: C[${idx}] outside the M×N window changed`);
  }
}

const describeCase = (c: GemmCase) =>
  `${c.tA ? "T" : "N"}${c.tB ? "T" : "N"} M=${c.M} N=${c.N} K=${c.K} α=${c.alpha} β=${c.beta} offsets ${c.aOff}/${c.bOff}/${c.cOff} ld ${c.lda}/${c.ldb}/${c.ldc}`;

describe("gemm", () => {
  for (const backend of BACKENDS) {
    test(`${backend}: randomized shapes 1…70, all transposes, α/β, offsets and leading dimensions`, () => {
      setBackend(backend);
      const rng = new RandomState(backend === "js" ? 101 : 202);
      const alphas = [1, -0.5, 2, 0];
      const betas = [0, 1, 0.25, -1];
      for (let t = 0; t < 120; t++) {
        const M = rng.randint(1, 71),
          N = rng.randint(1, 71),
          K = rng.randint(1, 71);
        const c = gemmCase(
          rng,
          M,
          N,
          K,
          t % 2 === 1,
          (t >> 1) % 2 === 1,
          alphas[(t >> 2) % 4],
          betas[(t >> 4) % 4],
          t % 3 !== 0,
        );
        const C = c.C.slice();
        runGemm(c, C);
        checkGemm(c, C, `${backend} ${describeCase(c)}`);
      }
    });

    test(`${backend}: sizes that cross the register tile and cache blocks (M > 120, K > 256, N mod 8 ≠ 0)`, () => {
      setBackend(backend);
      const rng = new RandomState(7);
      for (const [M, N, K] of [
        [131, 29, 300],
        [7, 133, 513],
        [125, 9, 257],
      ]) {
        for (const [tA, tB] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ]) {
          const c = gemmCase(rng, M, N, K, tA, tB, 1, 1, true);
          const C = c.C.slice();
          runGemm(c, C);
          checkGemm(c, C, `${backend} ${describeCase(c)}`);
        }
      }
    });

    test(`${backend}: β = 0 ignores what C held (NaN included); K = 0 and α = 0 only scale C`, () => {
      setBackend(backend);
      const rng = new RandomState(9);
      const c = gemmCase(rng, 5, 11, 6, false, false, 1, 0, false);
      const C = new Float32Array(c.C.length).fill(NaN);
      runGemm(c, C);
      assert.ok(C.every((v) => !Number.isNaN(v)));
      const C2 = Float32Array.from([1, 2, 3, 4]);
      gemm(false, false, 2, 2, 0, 1, new Float32Array(0), 0, 0, new Float32Array(0), 0, 2, 0.5, C2, 0, 2);
      assert.deepEqual([...C2], [0.5, 1, 1.5, 2]);
      gemm(false, false, 2, 2, 1, 0, Float32Array.of(NaN, NaN), 0, 1, Float32Array.of(1, 1), 0, 2, 2, C2, 0, 2);
      assert.deepEqual([...C2], [1, 2, 3, 4]);
    });
  }

  test("float64 operands always take the JS path", { skip: !hasWasm }, () => {
    setBackend("wasm");
    const rng = new RandomState(3);
    const A = Float64Array.from(rand(rng, 12)),
      B = Float64Array.from(rand(rng, 12));
    const C1 = new Float64Array(9),
      C2 = new Float64Array(9);
    gemm(false, false, 3, 3, 4, 1, A, 0, 4, B, 0, 3, 0, C1, 0, 3);
    gemmJS(false, false, 3, 3, 4, 1, A, 0, 4, B, 0, 3, 0, C2, 0, 3);
    assert.deepEqual(C1, C2);
  });
});

describe("wasm gemm: a fixed summation order", { skip: !hasWasm }, () => {
  /** C = β·C; C += (α·a_k)·b_k for k = 0, 1, … with every step rounded to float32: engine 1's documented order. */
  function sequentialF32(c: GemmCase): Float32Array {
    const C = c.C.slice();
    const f = Math.fround;
    for (let i = 0; i < c.M; i++) {
      for (let j = 0; j < c.N; j++) {
        const idx = c.cOff + i * c.ldc + j;
        let s = c.beta === 0 ? 0 : f(c.beta * C[idx]);
        for (let k = 0; k < c.K; k++) s = f(s + f(f(c.alpha * aAt(c, i, k)) * bAt(c, k, j)));
        C[idx] = s;
      }
    }
    return C;
  }

  test("NN and TN products equal the sequential float32 sum bit for bit, across tile, panel and block boundaries", () => {
    setBackend("wasm");
    const rng = new RandomState(11);
    for (const [M, N, K] of [
      [1, 1, 1],
      [6, 784, 25],
      [16, 100, 150],
      [131, 29, 600],
      [37, 70, 257],
      [64, 10, 84],
    ]) {
      for (const tA of [false, true]) {
        for (const [alpha, beta] of [
          [1, 0],
          [1, 1],
          [0.75, -0.5],
        ]) {
          const c = gemmCase(rng, M, N, K, tA, false, alpha, beta, true);
          const C = c.C.slice();
          runGemm(c, C);
          assert.deepEqual(C, sequentialF32(c), describeCase(c));
        }
      }
    }
  });

  test("any row range computed alone gives the same bits as the whole product (all four forms)", () => {
    setBackend("wasm");
    const rng = new RandomState(12);
    const M = 47,
      N = 53,
      K = 300;
    for (const [tA, tB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const c = gemmCase(rng, M, N, K, tA, tB, 1, 1, false);
      const whole = c.C.slice();
      runGemm(c, whole);
      const pieces = c.C.slice();
      for (const [r0, r1] of [
        [0, 1],
        [1, 8],
        [8, 30],
        [30, 47],
      ]) {
        const aOff = tA ? r0 : r0 * c.lda;
        gemm(tA, tB, r1 - r0, N, K, 1, c.A, aOff, c.lda, c.B, 0, c.ldb, 1, pieces, r0 * c.ldc, c.ldc);
      }
      assert.deepEqual(pieces, whole, `${tA ? "T" : "N"}${tB ? "T" : "N"}`);
    }
  });

  test("repeated calls give identical bits", () => {
    setBackend("wasm");
    const rng = new RandomState(13);
    const c = gemmCase(rng, 33, 41, 77, false, true, 1, 1, true);
    const C1 = c.C.slice();
    const C2 = c.C.slice();
    runGemm(c, C1);
    runGemm(c, C2);
    assert.deepEqual(C1, C2);
  });
});

describe("Conv2D on the wasm backend", { skip: !hasWasm }, () => {
  interface ConvCase {
    N: number;
    C: number;
    O: number;
    H: number;
    W: number;
    k: [number, number];
    s: [number, number];
    d: [number, number];
    padding: Conv2DPadding;
    bias: boolean;
  }
  const cases: ConvCase[] = [
    { N: 3, C: 1, O: 6, H: 28, W: 28, k: [5, 5], s: [1, 1], d: [1, 1], padding: "same", bias: true }, // LeNet conv1
    { N: 2, C: 6, O: 16, H: 14, W: 14, k: [5, 5], s: [1, 1], d: [1, 1], padding: "valid", bias: true }, // LeNet conv2
    { N: 2, C: 3, O: 5, H: 9, W: 11, k: [3, 3], s: [2, 2], d: [1, 1], padding: "same", bias: false },
    { N: 1, C: 2, O: 3, H: 10, W: 7, k: [3, 2], s: [1, 3], d: [2, 1], padding: [2, 1], bias: true },
    { N: 2, C: 4, O: 7, H: 5, W: 6, k: [1, 1], s: [1, 1], d: [1, 1], padding: "valid", bias: true }, // pointwise: no im2col
    { N: 1, C: 2, O: 2, H: 3, W: 3, k: [5, 5], s: [1, 1], d: [1, 1], padding: 3, bias: true }, // more padding than input
    { N: 2, C: 3, O: 9, H: 13, W: 5, k: [4, 3], s: [3, 1], d: [1, 2], padding: "same", bias: true },
  ];

  /** Float32 tolerance for sums of K terms of magnitude ~|a||b|: a few γ_K of the float64 reference's scale. */
  function assertNear(got: ArrayLike<number>, want: ArrayLike<number>, K: number, scale: number, what: string): void {
    const tol = 4 * (K + 2) * EPS32 * scale;
    for (let i = 0; i < want.length; i++) {
      if (!(Math.abs(got[i] - want[i]) <= tol)) assert.fail(`${what}[${i}]: got ${got[i]}, want ${want[i]} ± ${tol}`);
    }
  }

  for (const [idx, c] of cases.entries()) {
    test(`matches conv2dForwardRef: N${c.N} C${c.C}→${c.O} ${c.H}×${c.W} k${c.k.join("×")} s${c.s.join("×")} d${c.d.join("×")} padding ${JSON.stringify(c.padding)}`, () => {
      setBackend("wasm");
      const rng = new RandomState(100 + idx);
      const layer = new Conv2D({
        inChannels: c.C,
        outChannels: c.O,
        kernelSize: c.k,
        stride: c.s,
        dilation: c.d,
        padding: c.padding,
        bias: c.bias,
        rng,
      });
      if (layer.bias) for (let i = 0; i < c.O; i++) layer.bias.value.data[i] = rng.standardNormal();
      const x = randn(rng, [c.N, c.C, c.H, c.W]);
      const y = layer.forward(x);
      const pad = layer.paddingFor(c.H, c.W);
      const opts = { stride: c.s, padding: pad, dilation: c.d };
      const yRef = conv2dForwardRef(x, layer.weight.value, layer.bias?.value ?? null, opts);
      assert.deepEqual(y.shape, yRef.shape);
      const K = c.C * c.k[0] * c.k[1];
      assertNear(y.data, yRef.data, K, 10, "y");

      const dy = randn(rng, y.shape);
      const dyBefore = dy.data.slice();
      layer.weight.grad.data.fill(0.5); // gradients accumulate
      layer.bias?.grad.data.fill(-0.25);
      const dx = layer.backward(dy);
      assert.deepEqual(dy.data, dyBefore, "backward must not write into dy");
      const ref = conv2dBackwardRef(x, layer.weight.value, dy, opts);
      const P = y.shape[2] * y.shape[3];
      assertNear(
        layer.weight.grad.data,
        ref.dw.data.map((v) => v + 0.5),
        c.N * P,
        10,
        "dW",
      );
      if (layer.bias)
        assertNear(
          layer.bias.grad.data,
          ref.db.data.map((v) => v - 0.25),
          c.N * P,
          4,
          "db",
        );
      assertNear(dx.data, ref.dx.data, c.O * c.k[0] * c.k[1], 10, "dx");
    });
  }

  test("agrees with the JS backend's Conv2D, and a backward follows its own forward's path", () => {
    const rng = new RandomState(5);
    const x = randn(rng, [2, 3, 8, 8]);
    const dy = randn(rng, [2, 4, 8, 8]);
    const out: Record<string, { y: Float32Array; dx: Float32Array; dW: Float32Array }> = {};
    for (const b of BACKENDS) {
      setBackend(b);
      const layer = new Conv2D({
        inChannels: 3,
        outChannels: 4,
        kernelSize: 3,
        padding: "same",
        rng: new RandomState(1),
      });
      const y = layer.forward(x).data.slice() as Float32Array;
      setBackend(b === "js" ? "wasm" : "js"); // switching between forward and backward is harmless
      const dx = layer.backward(dy).data.slice() as Float32Array;
      out[b] = { y, dx, dW: layer.weight.grad.data.slice() as Float32Array };
    }
    for (const key of ["y", "dx", "dW"] as const) {
      const [a, b] = [out.js[key], out.wasm[key]];
      for (let i = 0; i < a.length; i++)
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-4 * (1 + Math.abs(a[i])), `${key}[${i}]: js ${a[i]} vs wasm ${b[i]}`);
    }
  });
});

describe("the kernels' scratch sizes on the wasm backend", { skip: !hasWasm }, () => {
  test("its size is exact in f64 however large; past 1 GiB a RangeError names the convolution", () => {
    const k = wasmKernels!;
    // 3×3 64 → 64 at 1024×1024: col_n is 576 · 1024² floats (in i32 the size wrapped to −1 879 038 592 bytes)
    const block = (floats: number) => Math.ceil((floats * 4) / 64) * 64 + 64;
    const edges = k.convThreadScratchBytes(1, 1, 1, 1, 1, 1) - block(1) - block(4); // gemmPacked's buffers
    assert.equal(k.convThreadScratchBytes(64, 64, 3, 3, 1024, 1024), block(576 * 1024 * 1024) + edges + block(256));
    assert.equal(k.convPackedBytes(4096, 4096, 3, 3), block(4096 * 4096 * 9 * 4));
    // an elastic augmentation's two float64 fields of a 20 000² image; a depthwise layer's dy rows of 1 ×
    // 100 000² (both wrapped an i32)
    assert.equal(k.augmentScratchBytes(20_000, 20_000, 1), 20_000 * 20_000 * 16);
    assert.ok(k.depthwiseThreadScratchBytes(1, 100_000, 100_000, 3, 3, 1, 1, 1, 1, 1, 100_000, 100_000) > 4e10);
    // the GEMM's and the dense layer's packed copies too (40 000² · 16 bytes wrapped an i32 as well)
    assert.equal(k.gemmScratchBytes(0, 0, 40_000, 40_000) - k.gemmScratchBytes(0, 0, 0, 0), 40_000 * 40_000 * 16);
    assert.equal(
      k.denseThreadScratchBytes(40_000, 40_000, 1) - k.denseThreadScratchBytes(0, 0, 1),
      40_000 * 40_000 * 16,
    );
    // a 512×512 kernel over a 1×1 image padded by 511: tiny operands, a 256 Gi-float col
    setBackend("wasm");
    const rng = new RandomState(3);
    const g = convGeometry(1, 1, 1, 1, [512, 512], [1, 1], [511, 511, 511, 511], [1, 1]);
    const x = randn(rng, [1, 1, 1, 1]);
    const w = randn(rng, [1, 1, 512, 512]);
    assert.throws(
      () => wasmBackend.conv2dForward(g, 1, x, w, null, null),
      (e: unknown) =>
        e instanceof RangeError &&
        /a 512×512 convolution of 1 → 1 channels with a 512×512 output needs \d+ MiB of WebAssembly scratch/.test(
          e.message,
        ),
    );
  });
});

describe("Dense, MaxPool2D and ReLU on the wasm backend", { skip: !hasWasm }, () => {
  test("Dense agrees with the JS path (forward, dW, db, dx), odd sizes included", () => {
    for (const [N, F, O, bias] of [
      [64, 400, 120, true],
      [5, 7, 3, false],
      [1, 1, 1, true],
      [13, 84, 10, true],
    ] as [number, number, number, boolean][]) {
      const rng = new RandomState(N + F + O);
      const x = randn(rng, [N, F]);
      const dy = randn(rng, [N, O]);
      const res: Float32Array[][] = [];
      for (const b of BACKENDS) {
        setBackend(b);
        const layer = new Dense({ inFeatures: F, outFeatures: O, bias, rng: new RandomState(2) });
        layer.weight.grad.data.fill(1);
        const y = layer.forward(x).data.slice() as Float32Array;
        const dx = layer.backward(dy).data.slice() as Float32Array;
        res.push([
          y,
          dx,
          layer.weight.grad.data.slice() as Float32Array,
          (layer.bias?.grad.data.slice() ?? new Float32Array(0)) as Float32Array,
        ]);
      }
      const scale = [F, O, N, N];
      res[0].forEach((a, t) => {
        const b = res[1][t];
        const tol = 4 * (scale[t] + 2) * EPS32 * 10;
        for (let i = 0; i < a.length; i++)
          assert.ok(
            Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(a[i])),
            `Dense ${N}×${F}→${O} output ${t} [${i}]: ${a[i]} vs ${b[i]}`,
          );
      });
    }
  });

  test("MaxPool2D gives the JS path's outputs and gradients bit for bit (ties, NaN, padding, odd sizes)", () => {
    const configs = [
      { kernelSize: 2 }, // the vectorized 2×2 case
      { kernelSize: 3, stride: 2, padding: 1 },
      { kernelSize: [2, 3] as [number, number], stride: 1 },
    ];
    for (const [ci, opts] of configs.entries()) {
      for (const [H, W] of [
        [28, 28],
        [9, 11],
        [5, 3],
      ]) {
        const rng = new RandomState(ci * 100 + H);
        const x = new NDArray(new Float32Array(3 * 2 * H * W), [3, 2, H, W]);
        for (let i = 0; i < x.size; i++) {
          const r = rng.random();
          x.data[i] = r < 0.05 ? NaN : r < 0.3 ? 1 : r < 0.35 ? -0 : Math.round(rng.standardNormal() * 4) / 4; // many ties
        }
        const res: Float32Array[][] = [];
        for (const b of BACKENDS) {
          setBackend(b);
          const pool = new MaxPool2D(opts);
          const y = pool.forward(x);
          const dy = new NDArray(
            Float32Array.from({ length: y.size }, (_, i) => (i % 7) - 3),
            y.shape,
          );
          res.push([y.data.slice() as Float32Array, pool.backward(dy).data.slice() as Float32Array]);
        }
        assert.deepEqual(res[1][0], res[0][0], `y ${JSON.stringify(opts)} ${H}×${W}`);
        assert.deepEqual(res[1][1], res[0][1], `dx ${JSON.stringify(opts)} ${H}×${W}`);
      }
    }
  });

  test("WasmReLU is bit-identical to the ReLU layer (NaN, ±0, odd lengths)", () => {
    setBackend("js");
    for (const n of [1, 3, 4, 5, 1001]) {
      const rng = new RandomState(n);
      const x = new NDArray(
        Float32Array.from({ length: n }, (_, i) => (i % 5 === 0 ? NaN : i % 7 === 0 ? -0 : rng.standardNormal())),
        [n],
      );
      const dy = new NDArray(rand(rng, n), [n]);
      const layer = new ReLU();
      const y = layer.forward(x);
      const dx = layer.backward(dy);
      const k = new WasmReLU();
      const y2 = new Float32Array(n);
      const dx2 = new Float32Array(n);
      k.forward(x.data, y2);
      k.backward(y2, dy.data, dx2);
      assert.deepEqual(y2, y.data);
      assert.deepEqual(dx2, dx.data);
    }
  });
});

describe("the finite check", { skip: !hasWasm }, () => {
  test("wasm finds the first NaN or ±Infinity where the JS loop does, at every position and length", () => {
    const specials = [NaN, Infinity, -Infinity];
    const ordinary = [0, -0, 1e-45, -3.4028234663852886e38, 3.4028234663852886e38, 1];
    for (let n = 0; n <= 19; n++) {
      const clean = Float32Array.from({ length: n }, (_, i) => ordinary[i % ordinary.length]);
      assert.equal(wasmBackend.firstNonFinite(clean), -1, `clean, n = ${n}`);
      for (let at = 0; at < n; at++) {
        for (const v of specials) {
          const a = clean.slice();
          a[at] = v;
          if (at + 2 < n) a[at + 2] = NaN; // a later one must not be reported first
          assert.equal(wasmBackend.firstNonFinite(a), jsBackend.firstNonFinite(a), `n = ${n}, ${v} at ${at}`);
          assert.equal(wasmBackend.firstNonFinite(a), at);
        }
      }
    }
  });
});

describe("wasm memory", { skip: !hasWasm }, () => {
  test("growing the memory between calls leaves earlier call sites working (their views are refreshed)", () => {
    setBackend("wasm");
    const rng = new RandomState(21);
    const layer = new Conv2D({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: "same", rng });
    const x = randn(rng, [2, 2, 6, 6]);
    const y1 = layer.forward(x).data.slice();
    const before = wasmMemoryBytes();
    const oldBuffer = wasmMemory!.buffer;
    // a product big enough to grow the arena
    const n = Math.ceil(Math.sqrt(before / 4)) + 8;
    const A = new Float32Array(n * n).fill(1);
    const C = new Float32Array(n);
    gemm(false, false, 1, n, n, 1, A.subarray(0, n), 0, n, A, 0, n, 0, C, 0, n);
    assert.ok(wasmMemoryBytes() > before, "memory grew");
    assert.equal(oldBuffer.byteLength, 0, "the old buffer is detached (non-shared memory)");
    assert.ok(C.every((v) => v === n));
    assert.deepEqual(layer.forward(x).data, y1);
  });

  test("training LeNet-sized batches does not grow the memory after the first step", () => {
    setBackend("wasm");
    const { model, x, y } = tinyModel(3);
    model.fit(x, y, { epochs: 1, batchSize: 16, seed: 1 });
    const size = wasmMemoryBytes();
    model.fit(x, y, { epochs: 2, batchSize: 16, seed: 2 });
    assert.equal(wasmMemoryBytes(), size);
  });
});

/** A conv + pool + dense classifier on random 10×10 images with 3 classes. */
function tinyModel(seed: number): { model: Sequential; x: NDArray; y: Int32Array } {
  const rng = new RandomState(seed);
  const x = randn(rng, [48, 1, 10, 10]);
  const y = Int32Array.from({ length: 48 }, () => rng.randint(0, 3));
  const model = new Sequential(
    [
      new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
      new ReLU(),
      new MaxPool2D({ kernelSize: 2 }),
      new Conv2D({ inChannels: 4, outChannels: 6, kernelSize: 3 }),
      new ReLU(),
      new Flatten(),
      new Dense({ inFeatures: 6 * 3 * 3, outFeatures: 3 }),
    ],
    { inputShape: [1, 10, 10], seed },
  );
  model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.05, momentum: 0.9 }) });
  return { model, x, y };
}

describe("determinism", () => {
  for (const backend of BACKENDS) {
    test(`${backend}: the same seed trains bit-identically twice`, () => {
      setBackend(backend);
      const runs = [0, 1].map(() => {
        const { model, x, y } = tinyModel(4);
        const history = model.fit(x, y, { epochs: 3, batchSize: 16, seed: 9 });
        return {
          losses: history.epochs.map((e) => e.loss),
          params: model.params().map((p) => Array.from(p.value.data)),
        };
      });
      assert.deepEqual(runs[1], runs[0]);
      assert.ok(runs[0].losses[2] < runs[0].losses[0], `training reduces the loss: ${runs[0].losses.join(", ")}`);
    });
  }
});

describe("backend switch and fallbacks", () => {
  test("setBackend validates its argument", () => {
    assert.throws(() => {
      setBackend("gpu" as BackendName);
    }, /^RangeError: setBackend: backend must be "js" or "wasm", got "gpu"$/);
    setBackend("js");
    assert.equal(getBackend(), "js");
  });

  test("a missing or broken generated module means no kernels, with the reason, not a crash", async () => {
    const reason = async (importer: () => Promise<unknown>) => {
      const r = await loadKernels(importer);
      return typeof r === "string" ? r : "loaded";
    };
    assert.match(
      await reason(() => Promise.reject(new Error("Cannot find module"))),
      /kernels\.generated\.ts is missing: run `node scripts\/build-wasm\.mjs`/,
    );
    assert.match(await reason(() => Promise.resolve({})), /has no wasmBase64 string/);
    assert.match(
      await reason(() => Promise.resolve({ wasmBase64: btoa("not wasm") })),
      /^the kernel module failed to load/,
    );
    // a valid module that is not ours: (module) with no exports
    assert.match(
      await reason(() => Promise.resolve({ wasmBase64: btoa(String.fromCharCode(0, 97, 115, 109, 1, 0, 0, 0)) })),
      /^the kernel module lacks gemm, gemmScratchBytes/,
    );
  });

  test("the shared-memory variant (for workers) loads and computes the same bits", { skip: !hasWasm }, async () => {
    const shared = await loadKernels(undefined, { shared: true });
    if (typeof shared === "string") assert.fail(shared);
    assert.ok(shared.memory.buffer instanceof SharedArrayBuffer);
    const plain = await loadKernels();
    assert.ok(typeof plain !== "string");
    const [M, N, K] = [19, 23, 37];
    const results = [shared, plain].map(({ exports: k, memory }) => {
      const f = new Float32Array(memory.buffer);
      const a = 1024,
        b = a + 4 * M * K,
        c = b + 4 * K * N,
        ws = c + 4 * M * N;
      const r = new RandomState(5);
      for (let i = 0; i < M * K + K * N; i++) f[a / 4 + i] = r.standardNormal();
      k.gemm(0, 0, M, N, K, 1, a, K, b, N, 0, c, N, ws);
      k.gemm(1, 1, M, N, K, 1, a, M, b, K, 1, c, N, ws); // accumulate a TT product on top
      return f.slice(c / 4, c / 4 + M * N);
    });
    assert.deepEqual(results[0], results[1]);
  });

  test("HANDPROP_BACKEND picks the initial backend; an unknown value is an error naming it", () => {
    const run = (value: string) =>
      spawnSync(
        process.execPath,
        ["--import", "tsx", "-e", "import('./src/kernels/backend.ts').then((b) => console.log(b.getBackend()))"],
        {
          env: { ...process.env, HANDPROP_BACKEND: value },
          encoding: "utf8",
        },
      );
    const js = run("js");
    assert.equal(js.stdout.trim(), "js", js.stderr);
    const bad = run("fast");
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /HANDPROP_BACKEND: backend must be "js" or "wasm", got "fast"/);
  });

  test("the kernels loaded in this checkout (the build ran)", { skip: !simdSupported() }, () => {
    assert.ok(wasmKernels !== null, "src/kernels/wasm/kernels.generated.ts should exist after npm install / npm test");
  });
});

describe("the Kernels interface", () => {
  const backends: Kernels[] = hasWasm ? [jsBackend, wasmBackend] : [jsBackend];
  const zeros = (shape: readonly number[]) => new NDArray(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);

  for (const k of backends) {
    test(`${k.name}: needDx = false gives the same weight gradients, skips dx (conv2d, dense, pools, relu)`, () => {
      const rng = new RandomState(11);
      const g = convGeometry(3, 2, 7, 6, [3, 2], [2, 1], [1, 1, 0, 1], [1, 2]);
      const x = randn(rng, [3, 2, 7, 6]);
      const w = randn(rng, [4, 2, 3, 2]);
      const b = randn(rng, [4]);
      const run = (needDx: boolean) => {
        const ctx = k.conv2dForward(g, 1, x, w, b, null);
        const dy = randn(new RandomState(5), ctx.y.shape);
        const dW = zeros(w.shape),
          db = zeros([4]);
        const dx = k.conv2dBackward(ctx, w, dy, dW, db, needDx);
        return { dW: dW.data.slice(), db: db.data.slice(), dx: dx.data.slice() };
      };
      const full = run(true),
        skipped = run(false);
      assert.deepEqual(skipped.dW, full.dW);
      assert.deepEqual(skipped.db, full.db);
      assert.ok(
        full.dx.some((v) => v !== 0),
        "conv2d: dx when needed",
      );
      assert.ok(
        skipped.dx.every((v) => v === 0),
        "conv2d: no dx when not needed",
      );

      const xd = randn(rng, [5, 7]),
        wd = randn(rng, [7, 3]),
        bd = randn(rng, [3]);
      const dense = (needDx: boolean) => {
        const ctx = k.denseForward(xd, wd, bd, null);
        const dW = zeros(wd.shape),
          db = zeros([3]);
        const dx = k.denseBackward(ctx, wd, randn(new RandomState(6), ctx.y.shape), dW, db, needDx);
        return { dW: dW.data.slice(), db: db.data.slice(), dx: dx.data.slice() };
      };
      const dFull = dense(true),
        dSkipped = dense(false);
      assert.deepEqual(dSkipped.dW, dFull.dW);
      assert.deepEqual(dSkipped.db, dFull.db);
      assert.ok(
        dFull.dx.some((v) => v !== 0),
        "dense: dx when needed",
      );
      assert.ok(
        dSkipped.dx.every((v) => v === 0),
        "dense: no dx when not needed",
      );

      const pg: PoolGeometry = { N: 2, C: 3, H: 5, W: 5, kh: 3, kw: 3, sh: 2, sw: 2, ph: 1, pw: 1, OH: 3, OW: 3 };
      const xp = randn(rng, [2, 3, 5, 5]);
      const dyp = randn(rng, [2, 3, 3, 3]);
      for (const [name, forward] of [
        ["maxPool2d", () => k.maxPool2dForward(pg, xp, null)],
        ["avgPool2d", () => k.avgPool2dForward(pg, false, xp, null)],
      ] as const) {
        const ctx = forward();
        const backward = (needDx: boolean) =>
          name === "maxPool2d" ? k.maxPool2dBackward(ctx, dyp, needDx) : k.avgPool2dBackward(ctx, dyp, needDx);
        assert.ok(
          backward(false).data.every((v) => v === 0),
          `${name}: no dx when not needed`,
        );
        assert.ok(
          backward(true).data.some((v) => v !== 0),
          `${name}: dx when needed`,
        );
      }
      const r = k.reluForward(xp, null);
      assert.ok(
        k.reluBackward(r, xp, false).data.every((v) => v === 0),
        "relu: no dx when not needed",
      );
      assert.ok(
        k.reluBackward(r, xp, true).data.some((v) => v !== 0),
        "relu: dx when needed",
      );
    });
  }

  // Grouped (G = 2) and depthwise (G = C = 3, depth multiplier 2) convolutions, derivation.md §5.1: each
  // group's block of y, dW and dx is the plain reference convolution of its channel slices.
  const slice = (a: NDArray, from: number, to: number): NDArray => {
    const [N, C, ...rest] = a.shape;
    const plane = rest.reduce((p, d) => p * d, 1);
    const out = new Float64Array(N * (to - from) * plane);
    for (let n = 0; n < N; n++)
      out.set(a.data.subarray((n * C + from) * plane, (n * C + to) * plane), n * (to - from) * plane);
    return new NDArray(out, [N, to - from, ...rest]);
  };
  for (const k of backends) {
    for (const [label, C, O, G] of [
      ["grouped", 4, 6, 2],
      ["depthwise", 3, 6, 3],
    ] as const) {
      test(`${k.name}: ${label} conv2d (groups ${G}) = per-group reference convolutions; needDx honoured`, () => {
        const rng = new RandomState(21);
        const stride = [2, 1] as const,
          padding = [1, 1, 0, 1] as const,
          dilation = [1, 2] as const;
        const g = convGeometry(2, C, 7, 6, [3, 2], stride, padding, dilation);
        const x = randn(rng, [2, C, 7, 6]),
          w = randn(rng, [O, C / G, 3, 2]),
          b = randn(rng, [O]);
        const ctx = k.conv2dForward(g, G, x, w, b, null);
        if (k === wasmBackend)
          assert.equal(ctx.kernels, wasmBackend, "the wasm backend runs grouped and depthwise convolutions");
        const dy = randn(rng, ctx.y.shape);
        const run = (needDx: boolean) => {
          const dW = zeros(w.shape),
            db = zeros([O]);
          const dx = ctx.kernels.conv2dBackward(ctx, w, dy, dW, db, needDx); // as the dispatcher does
          return { dW, db, dx: new NDArray(dx.data.slice(), dx.shape) };
        };
        const skipped = run(false),
          full = run(true); // dx of a fresh context: still all zeros when skipped
        assert.deepEqual(skipped.dW.data, full.dW.data);
        assert.deepEqual(skipped.db.data, full.db.data);
        assert.ok(
          skipped.dx.data.every((v) => v === 0),
          "no dx when not needed",
        );
        const close = (got: NDArray, want: NDArray, what: string) => {
          for (let i = 0; i < want.size; i++) {
            assert.ok(
              Math.abs(got.data[i] - want.data[i]) <= 1e-4 * (1 + Math.abs(want.data[i])),
              `${what}[${i}]: ${got.data[i]} vs ${want.data[i]}`,
            );
          }
        };
        const Cg = C / G,
          Og = O / G;
        for (let gi = 0; gi < G; gi++) {
          const opts = { stride, padding, dilation };
          const xg = slice(x, gi * Cg, (gi + 1) * Cg);
          const wg = new NDArray(w.data.slice((gi * Og * w.size) / O, ((gi + 1) * Og * w.size) / O), [Og, Cg, 3, 2]);
          const bg = new NDArray(b.data.slice(gi * Og, (gi + 1) * Og), [Og]);
          close(slice(ctx.y, gi * Og, (gi + 1) * Og), conv2dForwardRef(xg, wg, bg, opts), `y group ${gi}`);
          const ref = conv2dBackwardRef(xg, wg, slice(dy, gi * Og, (gi + 1) * Og), opts);
          close(
            new NDArray(full.dW.data.slice((gi * Og * w.size) / O, ((gi + 1) * Og * w.size) / O), ref.dw.shape),
            ref.dw,
            `dW group ${gi}`,
          );
          close(new NDArray(full.db.data.slice(gi * Og, (gi + 1) * Og), [Og]), ref.db, `db group ${gi}`);
          close(slice(full.dx, gi * Cg, (gi + 1) * Cg), ref.dx, `dx group ${gi}`);
        }
        assert.throws(() => k.conv2dForward(g, 5, x, w, b, null), /groups 5 does not fit input channels/);
      });
    }
  }

  const reuseAndDispatch = "a forward reuses its previous context's buffers; a backward goes to its forward's backend";
  test(reuseAndDispatch, { skip: !hasWasm }, () => {
    const rng = new RandomState(2);
    const x = randn(rng, [4, 6]),
      w = randn(rng, [6, 5]);
    setBackend("wasm");
    const ctx = kernels.denseForward(x, w, null, null);
    assert.equal(ctx.kernels, wasmBackend);
    assert.equal(kernels.denseForward(x, w, null, ctx), ctx, "same backend and shapes: the same context");
    const expected = zeros(w.shape);
    wasmBackend.denseBackward(ctx, w, ctx.y, expected, null, true);
    setBackend("js");
    const dW = zeros(w.shape);
    kernels.denseBackward(ctx, w, ctx.y, dW, null, true);
    assert.deepEqual(dW.data, expected.data, "ran on wasm, where its forward ran");
    assert.equal(kernels.denseForward(x, w, null, ctx).kernels, jsBackend, "the next forward follows the switch");
    assert.throws(() => jsBackend.denseBackward(ctx, w, ctx.y, dW, null, true), /WasmDenseContext/);
  });

  test("float64 always runs on the JS backend", { skip: !hasWasm }, () => {
    setBackend("wasm");
    const x = new NDArray(new Float64Array(12).fill(-1), [3, 4]);
    assert.equal(kernels.reluForward(x, null).kernels, jsBackend);
  });

  test("Layer.backward(dy, {needDx: false}) gives the same weights' gradients (Conv2D first layer)", () => {
    for (const backend of BACKENDS) {
      setBackend(backend);
      const grads = [true, false].map((needDx) => {
        const rng = new RandomState(1);
        const layer = new Conv2D({ inChannels: 1, outChannels: 3, kernelSize: 3, padding: "same", rng });
        const y = layer.forward(randn(new RandomState(3), [2, 1, 6, 6]));
        layer.backward(randn(new RandomState(4), y.shape), { needDx });
        return layer.weight.grad.data.slice();
      });
      assert.deepEqual(grads[1], grads[0], backend);
    }
  });

  test("no layer selects a backend: src/nn imports the dispatcher, never a backend or the backend switch", async () => {
    const { readdirSync, readFileSync } = await import("node:fs");
    for (const f of readdirSync("src/nn").filter((n) => n.endsWith(".ts"))) {
      const text = readFileSync(`src/nn/${f}`, "utf8");
      const backendImport = /from "[^"]*kernels\/(wasm|js|threads)[^"]*"/;
      const selection = new RegExp(`${backendImport.source}|useWasm|[gs]etBackend\\(|forwardOnWasm|skipInputGrad`);
      assert.doesNotMatch(text, selection, `src/nn/${f}`);
    }
  });
});
