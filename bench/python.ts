// The Node side of bench/py_worker.py: a persistent Python process driven over a pipe, one JSON line per
// request and per reply, so PyTorch and NumPy take their turns in the same interleaved schedule as
// handprop. Every request has a time limit (a stuck worker is killed, never waited on forever), and
// stderr is kept only up to a bound, for error messages.

import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface PythonHello {
  python: string;
  executable: string;
  torch: string | null;
  /** torch's BLAS (BLAS_INFO of torch.__config__.show(): "generic" is the slow reference BLAS). */
  blas: string | null;
  numpy: string | null;
  scipy: boolean;
  cores: number;
}

type Reply = { ok: true; [key: string]: unknown } | { ok: false; error: string };

const STDERR_LIMIT = 4096;
const WORKER_SCRIPT = fileURLToPath(new URL("./py_worker.py", import.meta.url));

export class PythonWorker {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private stderr = "";
  private exited: string | null = null;

  private constructor(readonly command: string) {
    // PYTHONUNBUFFERED: replies must not wait in a buffer; the worker flushes anyway.
    this.child = spawn(command, [WORKER_SCRIPT], {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (s: string) => {
      if (this.stderr.length < STDERR_LIMIT) this.stderr = (this.stderr + s).slice(0, STDERR_LIMIT);
    });
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      const waiter = this.pending.shift();
      if (!waiter) return;
      try {
        waiter.resolve(JSON.parse(line) as Reply);
      } catch {
        waiter.reject(new Error(`${command} bench/py_worker.py: not a JSON reply: ${line.slice(0, 200)}`));
      }
    });
    const fail = (why: string) => {
      this.exited = why;
      const lastError = this.stderr.trim().split("\n").pop() ?? "";
      for (const w of this.pending.splice(0))
        w.reject(new Error(`${command}: ${why}${lastError ? `: ${lastError}` : ""}`));
    };
    this.child.on("error", (e) => {
      fail(e.message);
    });
    this.child.on("exit", (code, signal) => {
      fail(`worker exited (${signal ?? `code ${String(code)}`})`);
    });
    this.child.stdin.on("error", () => undefined); // a dead worker is reported through "exit"
  }

  /** Starts `command` with bench/py_worker.py and asks what it can import; null if it does not answer. */
  static async start(
    command: string,
    timeoutMs = 60_000,
  ): Promise<{ worker: PythonWorker; hello: PythonHello } | null> {
    const worker = new PythonWorker(command);
    try {
      const hello = await worker.request({ cmd: "hello" }, timeoutMs);
      return { worker, hello: hello as unknown as PythonHello };
    } catch {
      worker.close();
      return null;
    }
  }

  /** One request, one reply; rejects with the worker's error, or after timeoutMs (and kills the worker). */
  request(req: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    if (this.exited !== null) return Promise.reject(new Error(`${this.command}: ${this.exited}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.close();
        reject(
          new Error(
            `${this.command}: no reply to '${String(req.cmd)}' within ${String(timeoutMs / 1000)} s; worker stopped`,
          ),
        );
      }, timeoutMs);
      this.pending.push({
        resolve: (r) => {
          clearTimeout(timer);
          if (r.ok) resolve(r);
          else reject(new Error(r.error));
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(JSON.stringify(req) + "\n");
    });
  }

  close(): void {
    if (this.exited === null) {
      this.exited = "closed";
      this.child.stdin.end(JSON.stringify({ cmd: "quit" }) + "\n");
      this.child.kill();
    }
  }
}

/**
 * The interpreters to try, in order: $HANDPROP_BENCH_PYTHON, Debian's /usr/bin/python3 (where
 * `apt-get install python3-torch` puts torch), then whatever python3 is first on PATH (often pyenv's).
 */
export function pythonCandidates(): string[] {
  const fromEnv = process.env.HANDPROP_BENCH_PYTHON;
  return [...new Set([...(fromEnv ? [fromEnv] : []), "/usr/bin/python3", "python3"])];
}

export interface PythonPeers {
  /** A worker whose python imports torch, or null. */
  torch: { worker: PythonWorker; hello: PythonHello } | null;
  /** A worker whose python imports numpy and scipy (the article's loop), or null. */
  numpy: { worker: PythonWorker; hello: PythonHello } | null;
  close(): void;
}

/** Starts workers on the candidates until one imports torch and one imports numpy + scipy (may be the same). */
export async function startPythonPeers(candidates = pythonCandidates()): Promise<PythonPeers> {
  let torch: PythonPeers["torch"] = null;
  let numpy: PythonPeers["numpy"] = null;
  const started: PythonWorker[] = [];
  for (const command of candidates) {
    if (torch && numpy) break;
    const w = await PythonWorker.start(command);
    if (!w) continue;
    let used = false;
    if (!torch && w.hello.torch !== null) {
      torch = w;
      used = true;
    }
    if (!numpy && w.hello.numpy !== null && w.hello.scipy) {
      numpy = w;
      used = true;
    }
    if (used) started.push(w.worker);
    else w.worker.close();
  }
  return {
    torch,
    numpy,
    close: () => {
      for (const w of started) w.close();
    },
  };
}
