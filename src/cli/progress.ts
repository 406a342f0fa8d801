// Training progress on stderr: a live bar (cli-progress) on a terminal; plain periodic lines when
// stderr is not a TTY (CI logs, pipes, files), where cli-progress would otherwise print nothing.
// Either way stdout stays free for results (and the --json line).

import cliProgress from "cli-progress";

export interface ProgressStats {
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface Progress {
  /** A new epoch of `total` images, `done` of them already seen (a resumed epoch starts part-way). */
  startEpoch(epoch: number, epochs: number, total: number, done?: number): void;
  update(done: number, stats: ProgressStats): void;
  /** End the epoch's bar (or print its last plain line). */
  endEpoch(): void;
  /** Print a line without garbling the bar. */
  log(line: string): void;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Force the bar (true) or plain lines (false); default: whether the stream is a TTY. */
  tty?: boolean;
  /** Seconds between plain lines (default 5). */
  interval?: number;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

export function createProgress(opts: ProgressOptions = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  return (opts.tty ?? stream.isTTY) ? new BarProgress(stream) : new PlainProgress(stream, (opts.interval ?? 5) * 1000);
}

class BarProgress implements Progress {
  private bar: cliProgress.SingleBar | null = null;
  constructor(private readonly stream: NodeJS.WriteStream) {}

  startEpoch(epoch: number, epochs: number, total: number, done = 0): void {
    this.endEpoch();
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: `epoch ${epoch}/${epochs} [{bar}] {percentage}% {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}`,
        barsize: 24,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(total, done, { loss: "-", acc: "-", ips: "-" });
  }

  update(done: number, s: ProgressStats): void {
    this.bar?.update(done, { loss: s.loss.toFixed(4), acc: pct(s.accuracy), ips: s.imagesPerSecond.toFixed(0) });
  }

  endEpoch(): void {
    this.bar?.stop();
    this.bar = null;
  }

  log(line: string): void {
    // cli-progress redraws on its own line; clear it, print, and let the next update redraw the bar.
    if (this.bar) this.stream.write("\r\x1b[K");
    this.stream.write(line + "\n");
  }
}

/** The epoch a PlainProgress reports: what startEpoch was given, and when. */
interface EpochRun {
  epoch: number;
  epochs: number;
  total: number;
  /** Images already seen when the epoch (re)started: the rate counts from here. */
  startDone: number;
  t0: number;
}

class PlainProgress implements Progress {
  private run: EpochRun = { epoch: 0, epochs: 0, total: 0, startDone: 0, t0: 0 };
  private lastPrint = 0;
  private last: { done: number; stats: ProgressStats } | null = null;
  private printedLast = true;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly intervalMs: number,
  ) {}

  startEpoch(epoch: number, epochs: number, total: number, done = 0): void {
    this.run = { epoch, epochs, total, startDone: done, t0: performance.now() };
    this.lastPrint = this.run.t0;
    this.last = null;
    this.printedLast = true;
    this.stream.write(`epoch ${epoch}/${epochs}: ${total} images${done > 0 ? `, resuming after ${done}` : ""}\n`);
  }

  private line(done: number, s: ProgressStats): string {
    const { epoch, epochs, total, startDone, t0 } = this.run;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = (done - startDone) / Math.max(elapsed, 1e-9);
    const eta = formatDuration((total - done) / rate);
    const width = String(total).length;
    return `epoch ${epoch}/${epochs}  ${String(done).padStart(width)}/${total} (${pct(done / total).padStart(6)})  loss ${s.loss.toFixed(4)}  acc ${pct(s.accuracy)}  ${s.imagesPerSecond.toFixed(0)} img/s  ETA ${eta}`;
  }

  update(done: number, s: ProgressStats): void {
    this.last = { done, stats: s };
    this.printedLast = false;
    const now = performance.now();
    if (now - this.lastPrint >= this.intervalMs) {
      this.lastPrint = now;
      this.printedLast = true;
      this.stream.write(this.line(done, s) + "\n");
    }
  }

  endEpoch(): void {
    if (this.last && !this.printedLast) this.stream.write(this.line(this.last.done, this.last.stats) + "\n");
    this.printedLast = true;
  }

  log(line: string): void {
    this.stream.write(line + "\n");
  }
}
