// The WebAssembly backend's pieces, each in the file that owns one responsibility:
//
//   wasm-loader.ts   loading the module (SIMD probe, ordinary and shared-memory builds)
//   wasm-memory.ts   the instance a call runs on, the scratch arena, views of linear memory
//   wasm-threads.ts  thread dispatch: the pool, how many threads a call is worth, parts
//   wasm-ops.ts      per-op adapters (copy in, run, copy out): gemmWasm, WasmConv2D, WasmDense, …
//   wasm-backend.ts  the Kernels interface (kernels.ts) over those adapters, with saved contexts
//
// This file only re-exports them, for the benchmarks and tests that drive the kernels directly.

export {
  loadKernels,
  simdSupported,
  wasmKernels,
  wasmMemory,
  wasmModule,
  wasmUnavailableReason,
  SHARED_MAX_PAGES,
} from "./wasm-loader.ts";
export type { KernelExports, LoadedKernels } from "./wasm-loader.ts";
export { ViewCache, wasmMemoryBytes } from "./wasm-memory.ts";
export {
  poolEveryCall,
  setWasmThreads,
  wasmThreads,
  wasmThreadsRequested,
  wasmThreadsUnavailable,
  wasmWorkerParts,
} from "./wasm-threads.ts";
export { WasmConv2D, WasmDense, WasmMaxPool2D, WasmOptimizer, WasmReLU, gemmWasm } from "./wasm-ops.ts";
