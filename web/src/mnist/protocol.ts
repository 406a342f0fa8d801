// Messages between page 2 (main.ts) and its training worker (worker.ts).

import type { LayerConfig, Normalization } from "handprop";

/** The model as it crosses the thread boundary: its config and its parameters, in params() order. */
export interface ModelSnapshot {
  /** Sequential.config(), or a graph Model's (type "Model", with its nodes and their inputs). */
  config: { type?: string; name?: string; inputShape?: number[] | null; layers: LayerConfig[] };
  weights: Float32Array[];
}

export interface TrainRequest {
  type: "train";
  model: ModelSnapshot;
  normalization: Normalization;
  /** Absolute URL of the folder holding mnist-subset.json. */
  dataUrl: string;
  epochs: number;
  lr: number;
  batchSize: number;
  seed: number;
  /** Kernel threads to train on (the worker uses at most one per core; 1 where the page is not isolated). */
  threads: number;
}

export type ToWorker = TrainRequest | { type: "stop" };

export type FromWorker =
  /** The worker is listening; `cores` is its navigator.hardwareConcurrency, `isolated` its crossOriginIsolated. */
  | { type: "ready"; cores: number; isolated: boolean }
  /** The kernel threads this run trains on, and why fewer than requested (null: all of them). */
  | { type: "threads"; threads: number; requested: number; cores: number; isolated: boolean; reason: string | null }
  | { type: "loaded"; train: number; test: number }
  | {
      type: "progress";
      epoch: number; //   0-based
      batch: number; //   batches done in this epoch
      batches: number; // batches per epoch
      loss: number; //    mean loss over the batches since the last report
      accuracy: number; // mean accuracy over the same batches
      imagesPerSecond: number;
    }
  /** Test-set evaluation after `epoch` (0-based); epoch −1 is the evaluation before training. */
  | { type: "epoch"; epoch: number; testLoss: number; testAccuracy: number; seconds: number }
  | { type: "weights"; weights: Float32Array[] }
  | { type: "done"; stopped: boolean }
  | { type: "error"; message: string };
