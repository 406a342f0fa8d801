// The state of page 1: the article's data and weights, where training stands, and the cost history.
// No DOM here: the page (main.ts) renders it, and tests can drive it in Node.

import { array } from "handprop";
import type { NDArray } from "handprop";
import {
  ARTICLE_DEFAULTS,
  ARTICLE_X,
  ARTICLE_Y,
  articleEvaluate as evaluate,
  articleGradients as gradients,
  articleInitialWeights as initialWeights,
  articleStep as step,
  type StepTrace,
} from "handprop";

/** A weight of the network: w1[p, q] (the 2×2 kernel) or w2[k] (the 4×1 dense weights). */
export type WeightRef = { m: "w1"; p: number; q: number } | { m: "w2"; k: number };

export const ALL_WEIGHTS: WeightRef[] = [
  { m: "w1", p: 0, q: 0 },
  { m: "w1", p: 0, q: 1 },
  { m: "w1", p: 1, q: 0 },
  { m: "w1", p: 1, q: 1 },
  { m: "w2", k: 0 },
  { m: "w2", k: 1 },
  { m: "w2", k: 2 },
  { m: "w2", k: 3 },
];

export function weightName(w: WeightRef): string {
  return w.m === "w1" ? `w1[${w.p},${w.q}]` : `w2[${w.k}]`;
}

export function sameWeight(a: WeightRef, b: WeightRef): boolean {
  return a.m === "w1" ? b.m === "w1" && a.p === b.p && a.q === b.q : b.m === "w2" && a.k === b.k;
}

export interface History {
  /** Epochs as x values; fractional after single-sample steps (epoch + samples done / 4). */
  x: number[];
  cost: number[];
  /** outs[i][t]: output for image i at history point t. */
  outs: number[][];
}

export class ArticleSession {
  /** images[i]: the 3×3 image i as 9 pixels, row-major, each 0 or 1. */
  readonly images: number[][] = ARTICLE_X.map((x) => Array.from(x.data));
  readonly targets: number[] = Array.from(ARTICLE_Y.data);
  w1!: NDArray;
  w2!: NDArray;
  seed = ARTICLE_DEFAULTS.seed;
  lr = ARTICLE_DEFAULTS.lr;
  /** Completed epochs, and the index of the next image to train on within the current epoch. */
  epoch = 0;
  sample = 0;
  /** True once data, weights or the learning rate mid-run were changed by hand since the last reset. */
  edited = false;
  history: History = { x: [], cost: [], outs: [[], [], [], []] };
  private xsCache: NDArray[] | null = null;

  constructor(seed = ARTICLE_DEFAULTS.seed) {
    this.reset(seed);
  }

  /** The four images as 3×3 float64 arrays (the article's X when unedited). */
  xs(): NDArray[] {
    this.xsCache ??= this.images.map((px) => array([px.slice(0, 3), px.slice(3, 6), px.slice(6, 9)]));
    return this.xsCache;
  }

  /** Draw fresh weights from `seed` and clear the history (the data stays as edited). */
  reset(seed = this.seed): void {
    this.seed = seed;
    ({ w1: this.w1, w2: this.w2 } = initialWeights(seed));
    this.epoch = 0;
    this.sample = 0;
    this.edited = this.isDataEdited();
    this.history = { x: [], cost: [], outs: [[], [], [], []] };
    this.record();
  }

  /** Whether the images or targets differ from the article's. */
  isDataEdited(): boolean {
    return (
      this.images.some((px, i) => px.some((v, k) => v !== ARTICLE_X[i].data[k])) ||
      this.targets.some((t, i) => t !== ARTICLE_Y.data[i])
    );
  }

  evaluate(): { cost: number; out: number[] } {
    return evaluate(this.xs(), this.targets, this.w1, this.w2);
  }

  /** Forward and backward for image i at the current weights. */
  trace(i: number): StepTrace {
    return gradients(this.xs()[i], this.targets[i], this.w1, this.w2);
  }

  /** One SGD step on the next image. */
  stepSample(recordAfter = true): void {
    const i = this.sample;
    ({ w1: this.w1, w2: this.w2 } = step(this.xs()[i], this.targets[i], this.w1, this.w2, this.lr));
    this.sample++;
    if (this.sample === this.images.length) {
      this.sample = 0;
      this.epoch++;
    }
    if (recordAfter) this.record();
  }

  /** Train on the rest of the current epoch (all four images when at an epoch boundary). */
  stepEpoch(recordAfter = true): void {
    do this.stepSample(false);
    while (this.sample !== 0);
    if (recordAfter) this.record();
  }

  /** Append the current total cost and outputs to the history. */
  record(): void {
    const { cost, out } = this.evaluate();
    const x = this.epoch + this.sample / this.images.length;
    const h = this.history;
    if (h.x.length > 0 && h.x[h.x.length - 1] === x) return;
    h.x.push(x);
    h.cost.push(cost);
    out.forEach((o, i) => h.outs[i].push(o));
  }

  togglePixel(i: number, k: number): void {
    this.images[i][k] = this.images[i][k] === 1 ? 0 : 1;
    this.xsCache = null;
    this.edited = true;
  }

  setTarget(i: number, y: number): void {
    this.targets[i] = y;
    this.edited = true;
  }

  getWeight(w: WeightRef): number {
    return w.m === "w1" ? this.w1.get(w.p, w.q) : this.w2.get(w.k, 0);
  }

  setWeight(w: WeightRef, v: number): void {
    if (w.m === "w1") {
      this.w1 = this.w1.copy();
      this.w1.set(v, w.p, w.q);
    } else {
      this.w2 = this.w2.copy();
      this.w2.set(v, w.k, 0);
    }
    this.edited = true;
  }

  setLr(lr: number): void {
    if (lr === this.lr) return;
    if (this.epoch > 0 || this.sample > 0) this.edited = true; // a run with two learning rates is not the CLI's
    this.lr = lr;
  }

  /** The CLI command that prints these exact weights, when there is one. */
  cliCommand(): string | null {
    if (this.edited || this.sample !== 0) return null;
    return `handprop seed --seed ${this.seed} --epochs ${this.epoch} --lr ${this.lr} --json`;
  }
}
