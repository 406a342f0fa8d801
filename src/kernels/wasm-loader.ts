// Loading the WebAssembly SIMD kernels (src/kernels/wasm/*.as, built by scripts/build-wasm.mjs into
// kernels.generated.ts): the module's exports, the SIMD probe, and the two builds (ordinary and shared).
//
// Loading. The module is compiled and instantiated once, when this file is first imported (top-level
// await, so it also works on a browser's main thread, where synchronous compilation of large modules
// is not allowed). If the generated file is missing (the build has not run), or the engine lacks
// WebAssembly SIMD (checked with WebAssembly.validate on a ten-byte SIMD function), nothing fails:
// `wasmKernels` stays null, `wasmUnavailableReason` says why, and every caller keeps the pure-TS path.
//
// The shared-memory build (for threads, see wasm-threads.ts) is compiled from the same generated file on
// first use, synchronously: threads run only off a browser's main thread, where that is allowed.

/**
 * Part t of T of a kernel call (wasm/parallel.as): ws is the running thread's scratch, then the call's own
 * operands — sizes and linear-memory addresses, all numbers, in the order its .as file declares.
 */
export type PartFn = (t: number, T: number, ws: number, ...operands: number[]) => void;

/** The exports of the kernel module (see src/kernels/wasm/*.as for their contracts). Pointers are byte offsets. */
// One entry per export, its raw arguments wrapped, so the ABI reads as a table.
// prettier-ignore
export interface KernelExports {
  gemm(
    transA: number, transB: number, M: number, N: number, K: number, alpha: number, a: number, lda: number,
    b: number, ldb: number, beta: number, c: number, ldc: number, ws: number
  ): void;
  gemmScratchBytes(transA: number, transB: number, M: number, K: number): number;
  convForward(
    N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number,
    dh: number, dw: number, padTop: number, padLeft: number, OH: number, OW: number, x: number, w: number,
    bias: number, y: number, ws: number
  ): void;
  convBackward(
    N: number, C: number, H: number, W: number, O: number, kh: number, kw: number, sh: number, sw: number,
    dh: number, dw: number, padTop: number, padLeft: number, OH: number, OW: number, x: number, w: number,
    dy: number, dW: number, db: number, dx: number, ws: number
  ): void;
  convScratchBytes(C: number, O: number, kh: number, kw: number, OH: number, OW: number): number;
  denseForward(N: number, F: number, O: number, x: number, w: number, bias: number, y: number, ws: number): void;
  denseBackward(
    N: number, F: number, O: number, x: number, w: number, dy: number, dW: number, db: number, dx: number,
    ws: number
  ): void;
  denseScratchBytes(N: number, F: number): number;
  maxPoolForward(
    NC: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, ph: number, pw: number,
    OH: number, OW: number, x: number, y: number, arg: number
  ): void;
  maxPoolBackward(n: number, dy: number, arg: number, dx: number, nx: number): void;
  reluForward(n: number, x: number, y: number): void;
  reluBackward(n: number, y: number, dy: number, dx: number): void;
  firstNonFinite(n: number, x: number): number;
  fillZero(n: number, x: number): void;
  firstNonFiniteAmong(count: number, table: number): number;
  // The parallel entry points (*Part: PartFn, one part of a call on one thread) and their scratch sizes.
  packA(transA: number, M: number, K: number, alpha: number, a: number, lda: number, apack: number): void;
  gemmPart: PartFn;
  gemmPartScratchBytes(transA: number, transB: number, M: number, N: number, K: number, T: number): number;
  convForwardPart: PartFn;
  convBackwardPart: PartFn;
  convPackedBytes(C: number, O: number, kh: number, kw: number): number;
  convThreadScratchBytes(C: number, O: number, kh: number, kw: number, OH: number, OW: number): number;
  denseForwardPart: PartFn;
  denseBackwardPart: PartFn;
  denseThreadScratchBytes(N: number, F: number, T: number): number;
  maxPoolForwardPart: PartFn;
  maxPoolBackwardPart: PartFn;
  reluForwardPart: PartFn;
  reluBackwardPart: PartFn;
  augmentPart: PartFn;
  augmentScratchBytes(H: number, W: number, elastic: number): number;
  augmentDraw(state: number, N: number, pixels: number, params: number, fields: number): void;
  adamUpdatePart: PartFn;
  sgdUpdatePart: PartFn;
  batchNormForwardPart: PartFn;
  batchNormBackwardPart: PartFn;
  addPart: PartFn;
  depthwiseForwardPart: PartFn;
  depthwiseBackwardPart: PartFn;
  depthwiseThreadScratchBytes(
    M: number, H: number, W: number, kh: number, kw: number, sh: number, sw: number, dh: number, dw: number,
    padLeft: number, OH: number, OW: number
  ): number;
  groupNormForwardPart: PartFn;
  groupNormBackwardPart: PartFn;
  groupNormAffinePart: PartFn;
  winogradForwardPart: PartFn;
  winogradWeightGradPart: PartFn;
  winogradWeightGradFinishPart: PartFn;
  winogradPackWeightsPart: PartFn;
  winogradWeightChunks(N: number, OH: number, OW: number): number;
  winogradPartialBytes(C: number, O: number, chunks: number): number;
  winogradPackWeights(O: number, C: number, w: number, flipped: number, upack: number, tmp: number): void;
  winogradPackedBytes(C: number, O: number): number;
  winogradGroupImages(OH: number, OW: number): number;
  winogradThreadScratchBytes(
    N: number, C: number, H: number, W: number, O: number, padTop: number, padLeft: number, OH: number, OW: number
  ): number;
}

/** The exports a pool runs, in the order of the Part indices below. */
export const PART_EXPORTS = [
  "gemmPart",
  "convForwardPart",
  "convBackwardPart",
  "denseForwardPart",
  "denseBackwardPart",
  "maxPoolForwardPart",
  "maxPoolBackwardPart",
  "reluForwardPart",
  "reluBackwardPart",
  "augmentPart",
  "adamUpdatePart",
  "sgdUpdatePart",
  "batchNormForwardPart",
  "batchNormBackwardPart",
  "addPart",
  "depthwiseForwardPart",
  "depthwiseBackwardPart",
  "groupNormForwardPart",
  "groupNormBackwardPart",
  "groupNormAffinePart",
  "winogradForwardPart",
  "winogradWeightGradPart",
  "winogradWeightGradFinishPart",
  "winogradPackWeightsPart",
] as const satisfies readonly (keyof KernelExports)[];
export const Part = {
  Gemm: 0,
  ConvForward: 1,
  ConvBackward: 2,
  DenseForward: 3,
  DenseBackward: 4,
  MaxPoolForward: 5,
  MaxPoolBackward: 6,
  ReluForward: 7,
  ReluBackward: 8,
  Augment: 9,
  AdamUpdate: 10,
  SgdUpdate: 11,
  BatchNormForward: 12,
  BatchNormBackward: 13,
  Add: 14,
  DepthwiseForward: 15,
  DepthwiseBackward: 16,
  GroupNormForward: 17,
  GroupNormBackward: 18,
  GroupNormAffine: 19,
  WinogradForward: 20,
  WinogradWeightGrad: 21,
  WinogradWeightGradFinish: 22,
  WinogradPackWeights: 23,
} as const;
export type PartIndex = (typeof Part)[keyof typeof Part];

const REQUIRED_EXPORTS: readonly (keyof KernelExports)[] = [
  "gemm",
  "gemmScratchBytes",
  "convForward",
  "convBackward",
  "convScratchBytes",
  "denseForward",
  "denseBackward",
  "denseScratchBytes",
  "maxPoolForward",
  "maxPoolBackward",
  "reluForward",
  "reluBackward",
  "firstNonFinite",
  "fillZero",
  "firstNonFiniteAmong",
  "packA",
  "gemmPartScratchBytes",
  "convPackedBytes",
  "convThreadScratchBytes",
  "denseThreadScratchBytes",
  "augmentScratchBytes",
  "augmentDraw",
  ...PART_EXPORTS,
  "depthwiseThreadScratchBytes",
  "winogradPackWeights",
  "winogradPackedBytes",
  "winogradGroupImages",
  "winogradThreadScratchBytes",
  "winogradWeightChunks",
  "winogradPartialBytes",
];

// (module (func (result v128) (v128.const i32x4 0 0 0 0)))  — validates only where SIMD is supported
const SIMD_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 22, 1, 20, 0, 253, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 11,
]);

/** True if this engine runs WebAssembly with the fixed-width SIMD proposal. */
export function simdSupported(): boolean {
  return typeof WebAssembly === "object" && WebAssembly.validate(SIMD_PROBE);
}

function decodeBase64(s: string): Uint8Array {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
/** A loaded kernel module: its exports, the memory it runs in, and the compiled module (for workers). */
export interface LoadedKernels {
  exports: KernelExports;
  memory: WebAssembly.Memory;
  module: WebAssembly.Module;
}

/** The generated module, imported so that a missing file is an ordinary rejected promise. */
function importGenerated(): Promise<unknown> {
  // A computed specifier: tsc and eslint pass on a fresh clone where the file does not exist yet, and
  // Vite still bundles it (it turns `./wasm/${x}.ts` into a glob of the directory's .ts files).
  const name = "kernels.generated";
  return import(`./wasm/${name}.ts`);
}

/** Maximum pages of the shared variant's memory (scripts/build-wasm.mjs declares the same): 2 GiB, reserved up front. */
export const SHARED_MAX_PAGES = 32768;

/**
 * What to do about a missing or stale kernel module. From the sources (a checkout, tsx or Vite's dev
 * server) the file is rebuilt by a script; from the compiled package (dist/) the build always ships
 * it, so its absence means a copy packed without its prepack build.
 */
const fromSources = typeof import.meta.url === "string" && import.meta.url.endsWith(".ts");
const GENERATED = fromSources
  ? "src/kernels/wasm/kernels.generated.ts"
  : "handprop's dist/kernels/wasm/kernels.generated.js";
const REBUILD = fromSources
  ? "rebuild it with node scripts/build-wasm.mjs"
  : "this copy of handprop was packed without its build: reinstall handprop from the npm registry, or pack it again " +
    "from a checkout with `npm pack` (its prepack script builds the kernels); until then it runs on the TypeScript kernels";

/**
 * Compile and instantiate the kernels, or say (as a string) why they cannot be used. `importer` yields
 * the generated module ({wasmBase64, wasmSharedBase64}); tests pass stand-ins to exercise the fallbacks.
 * shared: instantiate the shared-memory variant over a new shared WebAssembly.Memory — the form that
 * workers can instantiate again over the same memory (this file's own instance is the non-shared one).
 */
export async function loadKernels(
  importer: () => Promise<unknown> = importGenerated,
  opts: { shared?: boolean } = {},
): Promise<LoadedKernels | string> {
  if (!simdSupported()) {
    return (
      "this JavaScript engine has no WebAssembly SIMD (Node ≥ 16.4, Chrome ≥ 91, Firefox ≥ 89 and Safari ≥ 16.4 have it): " +
      "handprop runs on its TypeScript kernels, ~15× slower"
    );
  }
  let mod: unknown;
  try {
    mod = await importer();
  } catch {
    return `${GENERATED} is missing: ${fromSources ? "run `node scripts/build-wasm.mjs` (npm install does)" : REBUILD}`;
  }
  const key = opts.shared === true ? "wasmSharedBase64" : "wasmBase64";
  const b64 = typeof mod === "object" && mod !== null ? (mod as Record<string, unknown>)[key] : undefined;
  if (typeof b64 !== "string") return `${GENERATED} has no ${key} string: ${REBUILD}`;
  try {
    const module = await WebAssembly.compile(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    const memory =
      opts.shared === true
        ? new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true })
        : new WebAssembly.Memory({ initial: 16 });
    const instance = await WebAssembly.instantiate(module, { env: { memory } });
    const missing = REQUIRED_EXPORTS.filter((k) => typeof instance.exports[k] !== "function");
    if (missing.length > 0) return `the kernel module lacks ${missing.join(", ")}: ${REBUILD}`;
    return { exports: instance.exports as unknown as KernelExports, memory, module };
  } catch (e) {
    // In a browser the usual cause is a Content-Security-Policy without 'wasm-unsafe-eval'.
    return (
      `the kernel module failed to load: ${(e as Error).message} (a page's Content-Security-Policy must allow ` +
      "'wasm-unsafe-eval' for WebAssembly); handprop runs on its TypeScript kernels"
    );
  }
}

/** The generated module, kept: the shared-memory build is compiled from it when threads are first asked for. */
let generated: unknown = null;
const loaded = await loadKernels(async () => (generated = await importGenerated()));

/** The kernel exports, or null when the module could not be loaded (see wasmUnavailableReason). */
export const wasmKernels: KernelExports | null = typeof loaded === "string" ? null : loaded.exports;
/** Why wasmKernels is null, or null when it loaded. */
export const wasmUnavailableReason: string | null = typeof loaded === "string" ? loaded : null;
/** The compiled module and its memory, for instantiating it elsewhere (a worker). Null when unavailable. */
export const wasmModule: WebAssembly.Module | null = typeof loaded === "string" ? null : loaded.module;
export const wasmMemory: WebAssembly.Memory | null = typeof loaded === "string" ? null : loaded.memory;

/** The shared-memory build, instantiated on first use and kept (its memory cannot shrink anyway). */
let sharedKernels: LoadedKernels | null = null;

/** The ordinary build as loaded (null when unavailable). */
export const ordinaryKernels: LoadedKernels | null = typeof loaded === "string" ? null : loaded;

/** The shared-memory build once loadShared() has instantiated it, else null. */
export function loadedSharedKernels(): LoadedKernels | null {
  return sharedKernels;
}

/** Compile and instantiate the shared-memory build synchronously (allowed off a browser's main thread, where alone threads run). */
export function loadShared(): LoadedKernels | string {
  if (sharedKernels !== null) return sharedKernels;
  const b64 =
    typeof generated === "object" && generated !== null
      ? (generated as Record<string, unknown>).wasmSharedBase64
      : undefined;
  if (typeof b64 !== "string") return `${GENERATED} has no wasmSharedBase64 string: ${REBUILD}`;
  try {
    const module = new WebAssembly.Module(decodeBase64(b64) as Uint8Array<ArrayBuffer>);
    const memory = new WebAssembly.Memory({ initial: 16, maximum: SHARED_MAX_PAGES, shared: true });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    const missing = REQUIRED_EXPORTS.filter((k) => typeof instance.exports[k] !== "function");
    if (missing.length > 0) return `the shared kernel module lacks ${missing.join(", ")}: ${REBUILD}`;
    return (sharedKernels = { exports: instance.exports as unknown as KernelExports, memory, module });
  } catch (e) {
    return `the shared-memory kernel module failed to load: ${(e as Error).message}`;
  }
}
