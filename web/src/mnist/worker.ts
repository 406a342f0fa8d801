// Page 2's training worker: runs training.ts's loop off the main thread so drawing stays smooth, with
// the WebAssembly kernels' thread pool inside this worker. A worker may block in Atomics.wait, which the
// pool's calling thread must; SharedArrayBuffer needs the page to be cross-origin isolated (COOP/COEP:
// `handprop serve`, the Vite dev server and `vite preview` send them). Not isolated, training runs on one
// thread and the page says why. The kernels split no reduction across threads, so the trained weights
// are the same bit for bit whatever the thread count.

import { getThreads, setThreads, threadsUnavailable } from "handprop";
import type { FromWorker, ToWorker, TrainRequest } from "./protocol.ts";
import { runTraining } from "./training.ts";

// The dedicated-worker global, typed with the few members used here (the DOM lib has no worker scope).
const scope = self as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((e: MessageEvent<ToWorker>) => void) | null;
  crossOriginIsolated?: boolean;
  navigator: { hardwareConcurrency?: number };
};

const CORES = Math.max(1, Math.floor(scope.navigator.hardwareConcurrency ?? 1));

let abort: AbortController | null = null;
let busy = false;

function post(m: FromWorker, transfer: Transferable[] = []): void {
  scope.postMessage(m, transfer);
}

/** Start (or stop) kernel workers for `requested` threads, at most one per core; report what runs. */
async function useThreads(requested: number): Promise<void> {
  const isolated = scope.crossOriginIsolated === true;
  const want = Math.min(Math.max(1, Math.floor(requested)), CORES);
  if (isolated && want !== getThreads()) await setThreads(want);
  let reason = threadsUnavailable();
  if (!isolated && want > 1)
    reason = "the page is not cross-origin isolated (no COOP/COEP headers), so SharedArrayBuffer is unavailable";
  post({ type: "threads", threads: getThreads(), requested: want, cores: CORES, isolated, reason });
}

async function train(req: TrainRequest, signal: AbortSignal): Promise<void> {
  await useThreads(req.threads);
  await runTraining(req, signal, post);
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
post({ type: "ready", cores: CORES, isolated: scope.crossOriginIsolated === true });
