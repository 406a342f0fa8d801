// Messages between page 2 (main.ts) and its training worker (worker.ts).

import type { LayerConfig } from "handprop";
import type { Normalization } from "./model.ts";

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
}

export type ToWorker = TrainRequest | { type: "stop" };

export type FromWorker =
  | { type: "ready" }
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
