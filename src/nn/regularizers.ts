// Per-layer L2 regularisation (Keras' kernel_regularizer=l2(λ)), derivation.md §4.3:
//     R(θ) = Σ_l λ_l Σ_i w_li²          ∂R/∂w_li = 2 λ_l w_li
// added to the data loss and to the accumulated gradients before the optimizer step. Unlike an
// optimizer's weight decay it is part of the objective (it passes through Adam's scaling, is clipped
// with the rest of the gradient, and shows in the reported loss), and λ can differ from layer to layer.

import type { Param } from "./layer.ts";
import type { Sequential } from "./sequential.ts";

export interface L2Options {
  /** λ for the weights of every layer that has them, or λ by layer index ({0: 1e-4, 5: 1e-3}). */
  lambda: number | Readonly<Record<number, number>>;
  /** Penalise biases too (default false: only "weight" parameters, as Keras' kernel_regularizer). */
  includeBias?: boolean;
}

/**
 * L2 regularization added to the loss, R = Σ_l λ_l Σ w² (Keras's l2(λ); derivation.md §4.3): one λ for every layer, or
 * λ by layer index; biases excluded unless `includeBias`.
 */
export class L2Regularizer {
  readonly lambda: number | Readonly<Record<number, number>>;
  readonly includeBias: boolean;

  constructor(opts: L2Options) {
    const check = (where: string, v: unknown): void => {
      if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
        throw new RangeError(`L2Regularizer: ${where} must be a finite number ≥ 0, got ${String(v)}`);
      }
    };
    if (typeof opts.lambda === "number") check("lambda", opts.lambda);
    else {
      if (typeof opts.lambda !== "object" || opts.lambda === null) {
        throw new TypeError("L2Regularizer: lambda must be a number or {layerIndex: λ}");
      }
      for (const [k, v] of Object.entries(opts.lambda)) {
        if (!/^\d+$/.test(k)) {
          throw new RangeError(`L2Regularizer: lambda's keys must be layer indices, got ${JSON.stringify(k)}`);
        }
        check(`lambda[${k}]`, v);
      }
    }
    this.lambda = opts.lambda;
    this.includeBias = opts.includeBias ?? false;
  }

  /** The penalised parameters of `model` with their λ; a bad layer index names the layer. */
  private terms(model: Sequential): { lambda: number; param: Param }[] {
    const penalised = (p: Param) => p.trainable && (p.name === "weight" || (this.includeBias && p.name === "bias"));
    const pick = (params: Param[]) => params.filter(penalised);
    if (typeof this.lambda === "number") {
      const lambda = this.lambda;
      return model.layers.flatMap((l) => pick(l.params()).map((param) => ({ lambda, param })));
    }
    return Object.entries(this.lambda).flatMap(([k, lambda]) => {
      const layer = model.layers[Number(k)];
      if (layer === undefined) {
        throw new RangeError(`L2Regularizer: layer ${k} does not exist (the model has ${model.layers.length} layers)`);
      }
      const params = pick(layer.params());
      if (params.length === 0) throw new RangeError(`L2Regularizer: ${layer.describe()} has no weights to regularise`);
      return params.map((param) => ({ lambda, param }));
    });
  }

  /** R(θ) = Σ λ_l Σ w² (float64 sum). */
  penalty(model: Sequential): number {
    let r = 0;
    for (const { lambda, param } of this.terms(model)) {
      const w = param.value.data;
      let s = 0;
      for (let i = 0; i < w.length; i++) s += w[i] * w[i];
      r += lambda * s;
    }
    return r;
  }

  /** Accumulate ∂R/∂w = 2λw into the gradients and return R. */
  addTo(model: Sequential): number {
    let r = 0;
    for (const { lambda, param } of this.terms(model)) {
      const w = param.value.data;
      const dw = param.grad.data;
      const twoLambda = 2 * lambda;
      let s = 0;
      for (let i = 0; i < w.length; i++) {
        s += w[i] * w[i];
        dw[i] += twoLambda * w[i];
      }
      r += lambda * s;
    }
    return r;
  }

  config(): { type: "L2"; lambda: number | Record<number, number>; includeBias: boolean } {
    const lambda = typeof this.lambda === "number" ? this.lambda : { ...this.lambda };
    return { type: "L2", lambda, includeBias: this.includeBias };
  }
}
