// The WebAssembly adapter of data augmentation (src/data/augment.ts): copies a float32 batch into the
// arena, lets the caller draw every image's transform straight into linear memory, runs the kernel
// (wasm/augment.as) over the images on as many threads as the batch is worth, and copies the result out.
// The draws happen on the calling thread, before any part runs, so the generator sees the same sequence
// of calls whatever the thread count; a part owns whole images, so the output is the same bits too.

import { Part } from "./wasm-loader.ts";
import { ViewCache, alloc, begin, cur } from "./wasm-memory.ts";
import { evenParts, runParts, threadsFor } from "./wasm-threads.ts";

/** A batch (N, C, H, W) of float32 images. */
export interface AugmentGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
}

/**
 * Where a batch's uniform draws come from (augment.ts, drawUniforms): a generator's MT19937 state (a
 * RandomState's getState(), advanced here past the draws: setState it back), or a function that fills,
 * for every image n, params[6n … 6n + 4] with its five uniforms and, when fields is not null,
 * fields[2·H·W·n …] with its displacement draws 2u − 1, (Δx, Δy) interleaved pixel by pixel.
 */
export type UniformDraws =
  { key: Uint32Array; pos: number } | ((params: Float64Array, fields: Float64Array | null) => void);

/** Most bytes of linear memory one call's operands take (the batch is then augmented in several calls). */
const ARENA_LIMIT = 32 << 20;
let arenaLimit = ARENA_LIMIT;

/** Images per augmentWasm call that keep its arena within the limit (at least one, however large). */
export function augmentImagesPerCall(C: number, H: number, W: number, elastic: boolean): number {
  const bytesPerImage = 2 * C * H * W * 4 + 6 * 8 + (elastic ? H * W * 16 : 0); // x, y, params, fields
  return Math.max(1, Math.floor(arenaLimit / bytesPerImage));
}

/** For tests: the arena limit in bytes (null: the default, 32 MiB). Results never depend on it. */
export function setAugmentArenaLimit(bytes: number | null): void {
  arenaLimit = bytes ?? ARENA_LIMIT;
}

/** Words of MT19937's state. */
const MT_WORDS = 624;

const views = new ViewCache();

/** Float64 views of the arena (ViewCache has float32 and int32 only), recreated when the buffer changes. */
const doubles: { buffer: ArrayBufferLike | null; views: (Float64Array | undefined)[] } = { buffer: null, views: [] };

function float64(slot: number, ptr: number, n: number): Float64Array {
  const buffer = cur!.memory.buffer;
  if (buffer !== doubles.buffer) {
    doubles.buffer = buffer;
    doubles.views = [];
  }
  let v = doubles.views[slot];
  if (v === undefined || v.byteOffset !== ptr || v.length !== n)
    doubles.views[slot] = v = new Float64Array(buffer, ptr, n);
  return v;
}

/**
 * y ← x augmented image by image, as augment.ts's reference does it, bit for bit. taps: the normalised
 * Gaussian taps of the elastic smoothing (null: no elastic distortion), alpha its scale; fill is read
 * outside the image. On this thread, before any image is transformed: the uniforms are drawn, then
 * toTransforms turns each image's five into its (ia, ib, ic, id, t_x, t_y), in place.
 */
export function augmentWasm(
  g: AugmentGeometry,
  x: Float32Array,
  y: Float32Array,
  taps: Float64Array | null,
  alpha: number,
  fill: number,
  uniforms: UniformDraws,
  toTransforms: (params: Float64Array) => void,
): void {
  const { N, C, H, W } = g;
  const plane = H * W;
  const r = taps === null ? 0 : (taps.length - 1) >> 1;
  // multiply-adds: the smoothing's two passes over two fields, then ~8 per channel and pixel resampled
  const T = threadsFor(N * plane * (8 * C + 6 + (taps === null ? 0 : 4 * (2 * r + 1))));
  const k = begin(T);
  const xp = alloc(x.length * 4);
  const yp = alloc(y.length * 4);
  const paramsPtr = alloc(N * 6 * 8);
  const fieldsPtr = taps === null ? 0 : alloc(N * plane * 16);
  const tapsPtr = taps === null ? 0 : alloc(taps.length * 8);
  const stride = k.augmentScratchBytes(H, W, taps === null ? 0 : 1);
  const ws = alloc(T * stride);
  const statePtr = typeof uniforms === "function" ? 0 : alloc(MT_WORDS * 4 + 4);
  views.float32(0, xp, x.length).set(x);
  if (taps !== null) float64(2, tapsPtr, taps.length).set(taps);
  const params = float64(0, paramsPtr, N * 6);
  if (typeof uniforms === "function") uniforms(params, taps === null ? null : float64(1, fieldsPtr, N * plane * 2));
  else {
    const state = views.int32(2, statePtr, MT_WORDS + 1);
    state.set(uniforms.key);
    state[MT_WORDS] = uniforms.pos;
    k.augmentDraw(statePtr, N, plane, paramsPtr, fieldsPtr);
    uniforms.key.set(state.subarray(0, MT_WORDS)); // int32 → uint32: modulo 2³², the same bits
    uniforms.pos = state[MT_WORDS];
  }
  toTransforms(params);
  // prettier-ignore
  runParts(Part.Augment, T, evenParts(N, T), ws, stride,
    N, C, H, W, xp, yp, paramsPtr, fieldsPtr, tapsPtr, r, alpha, fill);
  y.set(views.float32(1, yp, y.length));
}
