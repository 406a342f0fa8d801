// Which implementation the float32 hot loops run on:
//
//   "wasm"  WebAssembly SIMD kernels (src/kernels/wasm/*.as via wasm.ts) — the default where they load
//   "js"    the pure-TypeScript loops (gemm.ts, im2col.ts and the layers' own loops) — everywhere else
//
// float64 always takes the TypeScript path (the kernels are float32 only), so gradient checks and the
// article's network are unaffected by this switch. Each backend is deterministic on its own; their
// float32 results differ in the last bits because they sum in different orders.
//
// The initial choice can be forced with the environment variable HANDPROP_BACKEND=js|wasm (Node), and
// changed at run time with setBackend(). Forcing "wasm" where the kernels are unavailable is an error
// that says why.

import type { TypedArray } from "../nd/ndarray.ts";
import { wasmKernels, wasmUnavailableReason } from "./wasm.ts";

export type BackendName = "js" | "wasm";

function envBackend(): string | undefined {
  return typeof process === "object" ? process.env.HANDPROP_BACKEND : undefined;
}

function checked(name: unknown, where: string): BackendName {
  if (name !== "js" && name !== "wasm") throw new RangeError(`${where}: backend must be "js" or "wasm", got ${JSON.stringify(name)}`);
  if (name === "wasm" && wasmKernels === null) throw new Error(`${where}: the "wasm" backend is unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  return name;
}

let current: BackendName = (() => {
  const env = envBackend();
  if (env !== undefined && env !== "") return checked(env, "HANDPROP_BACKEND");
  return wasmKernels !== null ? "wasm" : "js";
})();

/** The backend float32 kernels currently run on. */
export function getBackend(): BackendName {
  return current;
}

/** Switch backends. Throws if "wasm" is asked for where the kernels could not be loaded. */
export function setBackend(name: BackendName): void {
  current = checked(name, "setBackend");
}

/** True if the WebAssembly kernels loaded (whatever the current backend). */
export function wasmAvailable(): boolean {
  return wasmKernels !== null;
}

/** Why the WebAssembly kernels are unavailable, or null if they loaded. */
export function wasmUnavailable(): string | null {
  return wasmUnavailableReason;
}

/** True if work on these arrays should go to the wasm kernels: the backend is "wasm" and they are all float32. */
export function useWasm(a: TypedArray, b?: TypedArray, c?: TypedArray): boolean {
  return current === "wasm" && a instanceof Float32Array && (b === undefined || b instanceof Float32Array) && (c === undefined || c instanceof Float32Array);
}
