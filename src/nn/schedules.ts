// Learning-rate schedules: pure functions lr = lrAt(epoch, baseLr), epoch counted from 0, so a resumed
// run recomputes the same lr from the epoch number alone (PyTorch's closed forms):
//
//   StepLR         lr = baseLr · γ^⌊epoch / stepSize⌋
//   ExponentialLR  lr = baseLr · γ^epoch
//   CosineLR       lr = minLr + (baseLr − minLr) · (1 + cos(π · epoch / tMax)) / 2   for epoch ≤ tMax,
//                  then held at minLr (PyTorch's closed form would climb back up; restarts are not modelled).
//
// Sequential.fit sets optimizer.lr = schedule.lrAt(epoch, baseLr) at the start of every epoch.

import type { TypedConfig } from "./config.ts";

export type ScheduleConfig = TypedConfig;

/** A learning-rate schedule: the rate of each epoch from the optimizer's base rate. */
export interface LRSchedule {
  readonly type: string;
  lrAt(epoch: number, baseLr: number): number;
  config(): ScheduleConfig;
}

function checkEpoch(where: string, epoch: number, baseLr: number): void {
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new RangeError(`${where}: epoch must be a non-negative integer, got ${epoch}`);
  if (!Number.isFinite(baseLr) || baseLr < 0)
    throw new RangeError(`${where}: baseLr must be a finite number >= 0, got ${baseLr}`);
}

function positiveEpochs(where: string, field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1)
    throw new RangeError(`${where}: ${field} must be a positive integer, got ${String(v)}`);
  return v;
}

function decayFactor(where: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > 1)
    throw new RangeError(`${where}: gamma must be in (0, 1], got ${String(v)}`);
  return v;
}

export interface StepLROptions {
  /** Epochs between decays (positive integer). */
  stepSize: number;
  /** Multiplier applied every stepSize epochs (default 0.1). */
  gamma?: number;
}

/** Multiply the rate by `gamma` every `stepSize` epochs. */
export class StepLR implements LRSchedule {
  readonly type = "StepLR";
  readonly stepSize: number;
  readonly gamma: number;

  constructor(opts: StepLROptions) {
    this.stepSize = positiveEpochs("StepLR", "stepSize", opts.stepSize);
    this.gamma = decayFactor("StepLR", opts.gamma ?? 0.1);
  }

  lrAt(epoch: number, baseLr: number): number {
    checkEpoch(this.type, epoch, baseLr);
    return baseLr * this.gamma ** Math.floor(epoch / this.stepSize);
  }

  config(): ScheduleConfig {
    return { type: this.type, stepSize: this.stepSize, gamma: this.gamma };
  }
}

export interface ExponentialLROptions {
  /** Multiplier applied every epoch. */
  gamma: number;
}

/** Multiply the rate by `gamma` every epoch. */
export class ExponentialLR implements LRSchedule {
  readonly type = "ExponentialLR";
  readonly gamma: number;

  constructor(opts: ExponentialLROptions) {
    this.gamma = decayFactor("ExponentialLR", opts.gamma);
  }

  lrAt(epoch: number, baseLr: number): number {
    checkEpoch(this.type, epoch, baseLr);
    return baseLr * this.gamma ** epoch;
  }

  config(): ScheduleConfig {
    return { type: this.type, gamma: this.gamma };
  }
}

export interface CosineLROptions {
  /** Epochs from baseLr down to minLr (positive integer). */
  tMax: number;
  /** Floor of the schedule (default 0). */
  minLr?: number;
}

/** Cosine decay from the base rate to `minLr` over `tMax` epochs. */
export class CosineLR implements LRSchedule {
  readonly type = "CosineLR";
  readonly tMax: number;
  readonly minLr: number;

  constructor(opts: CosineLROptions) {
    this.tMax = positiveEpochs("CosineLR", "tMax", opts.tMax);
    const m = opts.minLr ?? 0;
    if (typeof m !== "number" || !Number.isFinite(m) || m < 0)
      throw new RangeError(`CosineLR: minLr must be a finite number >= 0, got ${String(m)}`);
    this.minLr = m;
  }

  lrAt(epoch: number, baseLr: number): number {
    checkEpoch(this.type, epoch, baseLr);
    if (epoch >= this.tMax) return this.minLr;
    return this.minLr + ((baseLr - this.minLr) * (1 + Math.cos((Math.PI * epoch) / this.tMax))) / 2;
  }

  config(): ScheduleConfig {
    return { type: this.type, tMax: this.tMax, minLr: this.minLr };
  }
}

/** Rebuild a schedule from its config(). */
export function scheduleFromConfig(config: ScheduleConfig): LRSchedule {
  switch (config.type) {
    case "StepLR":
      return new StepLR({ stepSize: config.stepSize as number, gamma: config.gamma as number | undefined });
    case "ExponentialLR":
      return new ExponentialLR({ gamma: config.gamma as number });
    case "CosineLR":
      return new CosineLR({ tMax: config.tMax as number, minLr: config.minLr as number | undefined });
    default:
      throw new RangeError(
        `unknown schedule type ${JSON.stringify(config.type)} (expected StepLR, ExponentialLR or CosineLR)`,
      );
  }
}
