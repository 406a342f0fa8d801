// Page 2's training worker: trains the page's model on the MNIST subset with handprop's own training
// loop (Sequential.fitAsync, i.e. the library's Trainer), Adam and SoftmaxCrossEntropy, off the main
// thread so drawing stays smooth.
//
// fitAsync yields to the worker's event loop between batches (yieldEveryMs), which is when a "stop"
// message gets through: it aborts the run through an AbortController. Shuffling is the Trainer's
// (RandomState(seed), a fresh permutation per epoch), so a seed fixes the run. Progress, test
// evaluations and weight snapshots are posted from the Trainer's callbacks.

import { NDArray, SoftmaxCrossEntropy, Adam } from "handprop";
import type { Callbacks, Sequential } from "handprop";
import { loadSplit, type DigitSet } from "./data.ts";
import { fromSnapshot, type Normalization } from "./model.ts";
import { normalizePixels } from "handprop";
import type { FromWorker, ToWorker, TrainRequest } from "./protocol.ts";

// The dedicated-worker global, typed with the few members used here (the DOM lib has no worker scope).
const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

/** Post a progress report every this many batches. */
const BATCHES_PER_REPORT = 4;
const WEIGHTS_EVERY_MS = 700;

let abort: AbortController | null = null;
let busy = false;
const cache = new Map<string, Promise<DigitSet>>();

function post(m: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(m, transfer);
}

function postWeights(model: Sequential): void {
  const weights = model.params().map((p) => Float32Array.from(p.value.data));
  post(
    { type: "weights", weights },
    weights.map((w) => w.buffer),
  );
}

function split(dataUrl: string, name: "train" | "test"): Promise<DigitSet> {
  const key = `${dataUrl} ${name}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = loadSplit(dataUrl, name)));
  return p;
}

/** A whole split as a normalised (count, 1, 28, 28) batch and its labels. */
function toArrays(set: DigitSet, norm: Normalization): { x: NDArray; y: Int32Array } {
  const data = new Float32Array(set.count * 784);
  normalizePixels(set.images, norm, data);
  return { x: new NDArray(data, [set.count, 1, 28, 28]), y: Int32Array.from(set.labels) };
}

async function train(req: TrainRequest, signal: AbortSignal): Promise<void> {
  const [trainSet, testSet] = await Promise.all([split(req.dataUrl, "train"), split(req.dataUrl, "test")]);
  post({ type: "loaded", train: trainSet.count, test: testSet.count });
  const model = fromSnapshot(req.model);
  const loss = new SoftmaxCrossEntropy();
  model.compile({ loss, optimizer: new Adam({ lr: req.lr }) });
  const trainAll = toArrays(trainSet, req.normalization);
  const testAll = toArrays(testSet, req.normalization);
  const batches = Math.ceil(trainSet.count / req.batchSize);
  // Test accuracy before training, so the chart's test curve starts where the model starts.
  const ev0 = model.evaluate(testAll.x, testAll.y, { loss });
  post({ type: "epoch", epoch: -1, testLoss: ev0.loss, testAccuracy: ev0.accuracy ?? 0, seconds: 0 });

  // The Trainer's batch logs are running means over the epoch; a report wants the mean since the last
  // report, so keep the sums at the last report and difference them.
  let reported = { seen: 0, lossSum: 0, correct: 0, t: performance.now() };
  let lastWeights = performance.now();
  const callbacks: Callbacks = {
    onEpochBegin: () => {
      reported = { seen: 0, lossSum: 0, correct: 0, t: performance.now() };
    },
    onBatchEnd: (batch, logs) => {
      const done = batch + 1;
      if (done % BATCHES_PER_REPORT !== 0 && done !== batches) return;
      const seen = logs.seen ?? 0;
      const lossSum = logs.loss * seen;
      const correct = (logs.accuracy ?? NaN) * seen;
      const n = seen - reported.seen;
      const now = performance.now();
      post({
        type: "progress",
        epoch: logs.epoch,
        batch: done,
        batches,
        loss: (lossSum - reported.lossSum) / n,
        accuracy: (correct - reported.correct) / n,
        imagesPerSecond: n / Math.max((now - reported.t) / 1000, 1e-6),
      });
      reported = { seen, lossSum, correct, t: now };
      if (now - lastWeights > WEIGHTS_EVERY_MS) {
        postWeights(model);
        lastWeights = now;
      }
    },
    onEpochEnd: (epoch, logs) => {
      postWeights(model);
      lastWeights = performance.now();
      post({
        type: "epoch",
        epoch,
        testLoss: logs.valLoss ?? NaN,
        testAccuracy: logs.valAccuracy ?? 0,
        seconds: logs.seconds ?? 0,
      });
    },
  };
  let stopped = false;
  try {
    await model.fitAsync(trainAll.x, trainAll.y, {
      epochs: req.epochs,
      batchSize: req.batchSize,
      seed: req.seed,
      shuffle: true,
      validationData: [testAll.x, testAll.y],
      callbacks,
      signal,
      yieldEveryMs: 30,
    });
  } catch (err) {
    if (!(err instanceof DOMException && err.name === "AbortError")) throw err;
    stopped = true;
  }
  postWeights(model);
  post({ type: "done", stopped });
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "stop") {
    abort?.abort();
    return;
  }
  if (busy) {
    post({ type: "error", message: "already training" });
    return;
  }
  busy = true;
  abort = new AbortController();
  train(msg, abort.signal)
    .catch((err: unknown) => {
      post({ type: "error", message: err instanceof Error ? err.message : String(err) });
    })
    .finally(() => {
      busy = false;
    });
};

// Tell the page we are listening. Chromium drops messages posted to a module worker before its
// module has run, so the page waits for this before sending anything.
post({ type: "ready" });
