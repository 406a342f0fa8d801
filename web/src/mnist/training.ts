// Page 2's training run, free of any worker or DOM API: worker.ts runs it in the page's Web Worker, and
// test/e2e/page2-speed.test.ts runs the very same function in Node to compare images/s at the same
// thread count. It trains the snapshot's model (LeNet-5, resnet-mini, mobilenet-mini or a loaded file)
// on the MNIST subset with the library's training loop (Sequential.fitAsync, i.e. the Trainer), Adam and
// SoftmaxCrossEntropy.
//
// fitAsync yields to the event loop between batches (yieldEveryMs), which is when an abort gets through.
// Shuffling is the Trainer's (RandomState(seed), a fresh permutation per epoch), so a seed fixes the run,
// and the kernels are bit-identical for every thread count, so the thread count does not change it.
// Progress, test evaluations and weight snapshots are posted from the Trainer's callbacks.

import { NDArray, SoftmaxCrossEntropy, Adam, normalizePixels } from "handprop";
import type { Callbacks, Normalization, Sequential } from "handprop";
import { loadSplit, type DigitSet } from "./data.ts";
import { fromSnapshot } from "./snapshot.ts";
import type { FromWorker, TrainRequest } from "./protocol.ts";

/** Post a progress report every this many batches. */
export const BATCHES_PER_REPORT = 4;
const WEIGHTS_EVERY_MS = 700;
/**
 * How often the loop yields to the event loop (for a "stop" message). A browser clamps a chain of
 * setTimeout(0) to ≥ 4 ms, so yielding every 30 ms would cost a tenth of the time; 100 ms costs a
 * few percent and a stop still answers within a tenth of a second.
 */
const YIELD_EVERY_MS = 100;

export type Post = (message: FromWorker, transfer?: Transferable[]) => void;

const cache = new Map<string, Promise<DigitSet>>();

function split(dataUrl: string, name: "train" | "test"): Promise<DigitSet> {
  const key = `${dataUrl} ${name}`;
  let p = cache.get(key);
  if (!p) {
    p = loadSplit(dataUrl, name);
    cache.set(key, p);
    p.catch(() => cache.delete(key)); // a failed download is retried by the next run
  }
  return p;
}

/** A whole split as a normalised (count, 1, 28, 28) batch and its labels. */
function toArrays(set: DigitSet, norm: Normalization): { x: NDArray; y: Int32Array } {
  const data = new Float32Array(set.count * 784);
  normalizePixels(set.images, norm, data);
  return { x: new NDArray(data, [set.count, 1, 28, 28]), y: Int32Array.from(set.labels) };
}

function postWeights(post: Post, model: Sequential): void {
  const weights = model.params().map((p) => Float32Array.from(p.value.data));
  post(
    { type: "weights", weights },
    weights.map((w) => w.buffer),
  );
}

/**
 * Train as `req` says until the epochs are done or `signal` aborts (then the "done" message says
 * stopped: true). Everything the page shows is posted through `post`; errors other than the abort are
 * thrown.
 */
export async function runTraining(req: TrainRequest, signal: AbortSignal, post: Post): Promise<void> {
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
        postWeights(post, model);
        lastWeights = now;
      }
    },
    onEpochEnd: (epoch, logs) => {
      postWeights(post, model);
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
      yieldEveryMs: YIELD_EVERY_MS,
    });
  } catch (err) {
    if (!(err instanceof DOMException && err.name === "AbortError")) throw err;
    stopped = true;
  }
  postWeights(post, model);
  post({ type: "done", stopped });
}
