// Page 2's training worker: trains the page's model on the MNIST subset with handprop's own
// Sequential.fit, Adam and SoftmaxCrossEntropy, off the main thread so drawing stays smooth.
//
// fit() runs synchronously, so the worker trains in chunks of a few batches and yields to its event
// loop between chunks: that is when a "stop" message gets through. Each epoch visits the samples in
// the order of RandomState(seed).permutation(N) (a fresh permutation per epoch from the same stream),
// so a seed fixes the run.

import { NDArray, RandomState, SoftmaxCrossEntropy, Adam } from "handprop";
import type { Sequential } from "handprop";
import { loadSplit, type DigitSet } from "./data.ts";
import { fromSnapshot, type Normalization } from "./model.ts";
import { normalizePixels } from "handprop";
import type { FromWorker, ToWorker, TrainRequest } from "./protocol.ts";

// The dedicated-worker global, typed with the few members used here (the DOM lib has no worker scope).
const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
};

const BATCHES_PER_CHUNK = 4;
const WEIGHTS_EVERY_MS = 700;

let stopRequested = false;
let busy = false;
const cache = new Map<string, Promise<DigitSet>>();

function post(m: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(m, transfer);
}

function postWeights(model: Sequential): void {
  const weights = model.params().map((p) => Float32Array.from(p.value.data));
  post({ type: "weights", weights }, weights.map((w) => w.buffer));
}

function split(dataUrl: string, name: "train" | "test"): Promise<DigitSet> {
  const key = `${dataUrl} ${name}`;
  let p = cache.get(key);
  if (!p) cache.set(key, (p = loadSplit(dataUrl, name)));
  return p;
}

/** Samples order[start … start+n) of a split as a normalised (n, 1, 28, 28) batch and labels. */
function gather(set: DigitSet, order: ArrayLike<number>, start: number, n: number, norm: Normalization): { x: NDArray; y: Int32Array } {
  const data = new Float32Array(n * 784);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = order[start + i];
    normalizePixels(set.images, norm, data.subarray(i * 784, i * 784 + 784), k * 784);
    y[i] = set.labels[k];
  }
  return { x: new NDArray(data, [n, 1, 28, 28]), y };
}

const yieldToEvents = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

async function train(req: TrainRequest): Promise<void> {
  const [trainSet, testSet] = await Promise.all([split(req.dataUrl, "train"), split(req.dataUrl, "test")]);
  post({ type: "loaded", train: trainSet.count, test: testSet.count });
  const model = fromSnapshot(req.model);
  const loss = new SoftmaxCrossEntropy();
  model.compile({ loss, optimizer: new Adam({ lr: req.lr }) });
  const testAll = gather(testSet, Array.from({ length: testSet.count }, (_, i) => i), 0, testSet.count, req.normalization);
  const rng = new RandomState(req.seed);
  const N = trainSet.count;
  const bs = req.batchSize;
  const batches = Math.ceil(N / bs);
  let lastWeights = performance.now();
  // Test accuracy before training, so the chart's test curve starts where the model starts.
  const ev0 = model.evaluate(testAll.x, testAll.y, { loss });
  post({ type: "epoch", epoch: -1, testLoss: ev0.loss, testAccuracy: ev0.accuracy ?? 0, seconds: 0 });

  for (let epoch = 0; epoch < req.epochs && !stopRequested; epoch++) {
    const order = rng.permutation(N);
    const t0 = performance.now();
    for (let b = 0; b < batches && !stopRequested; b += BATCHES_PER_CHUNK) {
      const start = b * bs;
      const n = Math.min(BATCHES_PER_CHUNK * bs, N - start);
      const { x, y } = gather(trainSet, order, start, n, req.normalization);
      let chunkLoss = NaN;
      let chunkAccuracy = NaN;
      const tc = performance.now();
      // One pass over this chunk, in order: the shuffle already happened above.
      model.fit(x, y, {
        epochs: 1, batchSize: bs, shuffle: false,
        callbacks: {
          onBatchEnd: (_batch, logs) => {
            // fit's logs are running means over this chunk: the last one is the chunk's mean.
            chunkLoss = logs.loss;
            chunkAccuracy = logs.accuracy ?? NaN;
          },
        },
      });
      const seconds = (performance.now() - tc) / 1000;
      post({
        type: "progress", epoch, batch: Math.min(batches, b + BATCHES_PER_CHUNK), batches,
        loss: chunkLoss, accuracy: chunkAccuracy, imagesPerSecond: n / Math.max(seconds, 1e-6),
      });
      if (performance.now() - lastWeights > WEIGHTS_EVERY_MS) {
        postWeights(model);
        lastWeights = performance.now();
      }
      await yieldToEvents();
    }
    if (stopRequested) break;
    const ev = model.evaluate(testAll.x, testAll.y, { loss });
    postWeights(model);
    lastWeights = performance.now();
    post({ type: "epoch", epoch, testLoss: ev.loss, testAccuracy: ev.accuracy ?? 0, seconds: (performance.now() - t0) / 1000 });
    await yieldToEvents();
  }
  postWeights(model);
  post({ type: "done", stopped: stopRequested });
}

scope.onmessage = (e: MessageEvent<ToWorker>) => {
  const msg = e.data;
  if (msg.type === "stop") {
    stopRequested = true;
    return;
  }
  if (busy) {
    post({ type: "error", message: "already training" });
    return;
  }
  busy = true;
  stopRequested = false;
  train(msg)
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
