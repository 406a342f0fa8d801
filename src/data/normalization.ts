// How raw pixels become model inputs, defined once for the library, the CLI and the page (browser-safe:
// no node: imports). A training run stores the numbers it used in its model (model.json
// training.dataset.normalization); everything that feeds the model later (predict, eval, export, the
// playground) reads them back through `normalizationFromTraining`, which refuses invalid numbers by
// file and field instead of quietly substituting defaults: a model fed with the wrong scaling still
// answers, just wrongly.

/** How raw pixels p ∈ [0, 255] become inputs: x = (p · scale − mean) / std. */
export interface Normalization {
  scale: number;
  mean: number;
  std: number;
}

/** PyTorch's MNIST numbers: mean and std of the training pixels scaled to [0, 1]. */
export const MNIST_STANDARDIZE: Normalization = { scale: 1 / 255, mean: 0.1307, std: 0.3081 };
export const UNIT_SCALE: Normalization = { scale: 1 / 255, mean: 0, std: 1 };

/** An invalid normalization: the message names the file and the field path inside it. */
export class NormalizationError extends Error {
  override name = "NormalizationError";
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function shown(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (typeof v === "number") return String(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v === "object" ? "an object" : typeof v;
}

/**
 * `value` as a Normalization, or a NormalizationError naming `file` and `field` (e.g.
 * "runs/m/model.json: training.dataset.normalization.std must be a finite number > 0, got 0").
 * scale and std must be finite and > 0 (0 or a negative std divides by zero or flips the inputs),
 * mean finite. Strings, even numeric ones, are refused.
 */
export function validateNormalization(value: unknown, file: string, field = "normalization"): Normalization {
  if (!isRecord(value))
    throw new NormalizationError(`${file}: ${field} must be an object {scale, mean, std}, got ${shown(value)}`);
  for (const key of ["scale", "mean", "std"] as const) {
    const v = value[key];
    const positive = key !== "mean";
    if (typeof v !== "number" || !Number.isFinite(v) || (positive && v <= 0)) {
      const want = positive ? "a finite number > 0" : "a finite number";
      throw new NormalizationError(
        `${file}: ${field}.${key} must be ${want}, got ${v === undefined ? "nothing" : shown(v)}`,
      );
    }
  }
  return { scale: value.scale as number, mean: value.mean as number, std: value.std as number };
}

/**
 * The normalization a saved model records in its `training` section (as `handprop train` writes it:
 * training.dataset.normalization). A model that records none (saved by the library without a
 * training section) gets MNIST's standardisation with `stored: false`, so callers can say so; one
 * that records an invalid value is an error naming `file` and the field.
 */
export function normalizationFromTraining(
  training: unknown,
  file: string,
): { normalization: Normalization; stored: boolean } {
  const fallback = { normalization: { ...MNIST_STANDARDIZE }, stored: false };
  if (training === undefined || training === null) return fallback;
  if (!isRecord(training)) throw new NormalizationError(`${file}: training must be an object, got ${shown(training)}`);
  const dataset = training.dataset;
  if (dataset === undefined) return fallback;
  if (!isRecord(dataset))
    throw new NormalizationError(`${file}: training.dataset must be an object, got ${shown(dataset)}`);
  if (dataset.normalization === undefined) return fallback;
  return {
    normalization: validateNormalization(dataset.normalization, file, "training.dataset.normalization"),
    stored: true,
  };
}

/**
 * Pixels p ∈ [0, 255] as normalised float32 inputs x = (p·scale − mean)/std: out.length of them, read
 * from pixels[offset] on (the whole array by default).
 */
export function normalizePixels(
  pixels: ArrayLike<number>,
  n: Normalization,
  out = new Float32Array(pixels.length),
  offset = 0,
): Float32Array {
  const { scale, mean, std } = n;
  for (let i = 0; i < out.length; i++) out[i] = (pixels[offset + i] * scale - mean) / std;
  return out;
}
