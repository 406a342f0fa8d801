// General matrix multiply on row-major typed arrays, the hot loop under Dense and Conv2D (im2col).
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C
//
// op(X) is X or Xᵀ. Row-major with leading dimensions lda/ldb/ldc, as in CBLAS with CblasRowMajor.
// gemm() runs on the current backend (backend.ts): the WebAssembly SIMD kernels for float32 operands
// on "wasm" (wasm-ops.ts, wasm/gemm.as), else the reference loops, gemmJS (js.ts). Each sums in its own
// fixed order, so results are deterministic.

import { kernels } from "./backend.ts";
import type { Gemm } from "./kernels.ts";

export { gemmJS } from "./js.ts";
export type { Gemm } from "./kernels.ts";

/** C = α·op(A)·op(B) + β·C on the current backend (Gemm, kernels.ts). */
export const gemm: Gemm = (transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc) => {
  kernels.gemm(transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
};
