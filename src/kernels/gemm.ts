// General matrix multiply on row-major typed arrays, the hot loop under Dense and Conv2D (im2col).
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
//
// op(X) is X or Xᵀ. Row-major with leading dimensions lda/ldb/ldc, as in CBLAS with CblasRowMajor.
// The loops are ordered so the innermost one walks contiguous memory (i-k-j for A·B), which is what
// makes plain JS reach a useful fraction of a GFLOP/s; accumulation order is fixed, so results are
// deterministic.
//
// With the "wasm" backend (backend.ts) and float32 operands the product runs in the WebAssembly SIMD
// kernels instead (wasm.ts, wasm/gemm.as): same contract, a different (also fixed) summation order.

import type { TypedArray } from "../nd/ndarray.ts";
import { useWasm } from "./backend.ts";
import { gemmWasm } from "./wasm.ts";

export function gemm(
  transA: boolean, transB: boolean,
  M: number, N: number, K: number,
  alpha: number,
  A: TypedArray, aOff: number, lda: number,
  B: TypedArray, bOff: number, ldb: number,
  beta: number,
  C: TypedArray, cOff: number, ldc: number,
): void {
  if (useWasm(A, B, C)) {
    gemmWasm(transA, transB, M, N, K, alpha, A as Float32Array, aOff, lda, B as Float32Array, bOff, ldb, beta, C as Float32Array, cOff, ldc);
    return;
  }
  gemmJS(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
}

/** The pure-TypeScript GEMM (any dtype), whatever the backend. */
export function gemmJS(
  transA: boolean, transB: boolean,
  M: number, N: number, K: number,
  alpha: number,
  A: TypedArray, aOff: number, lda: number,
  B: TypedArray, bOff: number, ldb: number,
  beta: number,
  C: TypedArray, cOff: number, ldc: number,
): void {
  // C ← beta·C
  if (beta !== 1) {
    for (let i = 0; i < M; i++) {
      const row = cOff + i * ldc;
      if (beta === 0) C.fill(0, row, row + N);
      else for (let j = 0; j < N; j++) C[row + j] *= beta;
    }
  }
  if (alpha === 0 || K === 0) return;
  if (!transB) {
    // C[i,:] += alpha · Σ_k op(A)[i,k] · B[k,:]   (inner loop over contiguous rows of B and C)
    for (let i = 0; i < M; i++) {
      const cRow = cOff + i * ldc;
      for (let k = 0; k < K; k++) {
        const a = alpha * (transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k]);
        if (a === 0) continue;
        const bRow = bOff + k * ldb;
        for (let j = 0; j < N; j++) C[cRow + j] += a * B[bRow + j];
      }
    }
  } else {
    // C[i,j] += alpha · Σ_k op(A)[i,k] · B[j,k]   (dot products over contiguous rows of B)
    for (let i = 0; i < M; i++) {
      const cRow = cOff + i * ldc;
      for (let j = 0; j < N; j++) {
        const bRow = bOff + j * ldb;
        let s = 0;
        if (transA) for (let k = 0; k < K; k++) s += A[aOff + k * lda + i] * B[bRow + k];
        else {
          const aRow = aOff + i * lda;
          for (let k = 0; k < K; k++) s += A[aRow + k] * B[bRow + k];
        }
        C[cRow + j] += alpha * s;
      }
    }
  }
}
