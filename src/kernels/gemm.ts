// General matrix multiply on row-major typed arrays, the hot loop under Dense and Conv2D (im2col).
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
//
// op(X) is X or Xᵀ. Row-major with leading dimensions lda/ldb/ldc, as in CBLAS with CblasRowMajor.
// gemm() runs on the current backend (backend.ts): the WebAssembly SIMD kernels for float32 operands
// on "wasm" (wasm-ops.ts, wasm/gemm.as), else the reference loops, gemmJS (js.ts). Each sums in its own
// fixed order, so results are deterministic.

import type { TypedArray } from "../nd/ndarray.ts";
import { kernels } from "./backend.ts";

export { gemmJS } from "./js.ts";

export function gemm(
  transA: boolean,
  transB: boolean,
  M: number,
  N: number,
  K: number,
  alpha: number,
  A: TypedArray,
  aOff: number,
  lda: number,
  B: TypedArray,
  bOff: number,
  ldb: number,
  beta: number,
  C: TypedArray,
  cOff: number,
  ldc: number,
): void {
  kernels.gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
}
