// Weight initialisers, every draw from a seeded RandomState so a model's start is reproducible.
//
//   He (Kaiming):   Var(w) = 2 / fanIn              normal: N(0, √(2/fanIn))   uniform: U(±√(6/fanIn))
//   Glorot (Xavier): Var(w) = 2 / (fanIn + fanOut)   normal: N(0, √(2/(fanIn+fanOut)))  uniform: U(±√(6/(fanIn+fanOut)))
//
// fanIn = inputs feeding one output unit (inChannels·kh·kw for conv, inFeatures for dense).
// Normals are plain (not truncated) Gaussians, as PyTorch's kaiming_normal_/xavier_normal_.

import type { NDArray } from "../nd/ndarray.ts";
import type { RandomState } from "../nd/random.ts";

export type InitName = "he_normal" | "he_uniform" | "glorot_normal" | "glorot_uniform" | "zeros";
export const INIT_NAMES: readonly InitName[] = ["he_normal", "he_uniform", "glorot_normal", "glorot_uniform", "zeros"];

/**
 * Fill w with the named initialization (He or Glorot, normal or uniform, or zeros) for the given fan-in and fan-out,
 * drawing from rng.
 */
export function initialize(w: NDArray, name: InitName, fanIn: number, fanOut: number, rng: RandomState): void {
  const d = w.data;
  switch (name) {
    case "zeros":
      d.fill(0);
      return;
    case "he_normal":
    case "glorot_normal": {
      const std = Math.sqrt(2 / (name === "he_normal" ? fanIn : fanIn + fanOut));
      for (let i = 0; i < d.length; i++) d[i] = std * rng.standardNormal();
      return;
    }
    case "he_uniform":
    case "glorot_uniform": {
      const limit = Math.sqrt(6 / (name === "he_uniform" ? fanIn : fanIn + fanOut));
      for (let i = 0; i < d.length; i++) d[i] = rng.uniform(-limit, limit);
      return;
    }
  }
}

export function checkInit(layer: string, v: unknown): InitName {
  if (typeof v !== "string" || !(INIT_NAMES as readonly string[]).includes(v)) {
    throw new RangeError(`${layer}: init must be one of ${INIT_NAMES.join(", ")}, got ${JSON.stringify(v)}`);
  }
  return v as InitName;
}
