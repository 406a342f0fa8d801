// `handprop serve`: build the playground (web/) when its sources changed, then serve the build on
// 127.0.0.1 with a small static server. Also used by the browser tests (test/e2e/).
//
// A production build served statically is the robust choice: nothing compiles on request, the pages
// work offline (KaTeX's fonts and uPlot are bundled), and the server sends the cross-origin isolation
// headers (COOP/COEP) that SharedArrayBuffer needs, so the pages behave as they would when deployed.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { constants, existsSync, readdirSync, statSync, type Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError, defineCommand } from "./args.ts";
import { printable } from "../io/text.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
/** The checkout's or the installed package's root: this file runs as src/cli/serve.ts, or bundled in dist/cli.js. */
export const REPO_ROOT = existsSync(join(HERE, "..", "package.json")) ? resolve(HERE, "..") : resolve(HERE, "..", "..");
export const WEB_DIR = join(REPO_ROOT, "web");
export const WEB_DIST = join(WEB_DIR, "dist");
/** An installed package ships the pages pre-built (web/dist, built at pack time) and not their sources. */
const PAGES_PREBUILT = !existsSync(join(WEB_DIR, "vite.config.ts"));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".woff": "font/woff",
  ".ttf": "font/ttf",
  ".wasm": "application/wasm",
  ".bin": "application/octet-stream",
  ".u8": "application/octet-stream",
  ".txt": "text/plain; charset=utf-8",
};

/** Headers on every response: cross-origin isolation, and no caching of a build that may change. */
export const SERVE_HEADERS: Record<string, string> = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

/** Newest modification time (ms) of the files under dir, skipping the folders named in `skip`. */
function newestMtime(path: string, skip: ReadonlySet<string>): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = 0;
  for (const name of readdirSync(path)) {
    if (skip.has(name)) continue;
    newest = Math.max(newest, newestMtime(join(path, name), skip));
  }
  return newest;
}

/** True when web/dist is missing or older than any source it is built from (web/ and src/). */
export function webBuildIsStale(outDir = WEB_DIST): boolean {
  const built = join(outDir, "index.html");
  if (!existsSync(built)) return true;
  const builtAt = statSync(built).mtimeMs;
  const skip = new Set(["dist", "node_modules", "data"]);
  const sources = Math.max(newestMtime(WEB_DIR, skip), newestMtime(join(REPO_ROOT, "src"), skip));
  return sources > builtAt;
}

/** Build the playground with Vite (web/vite.config.ts) into outDir. */
export async function buildWeb(opts: { outDir?: string; quiet?: boolean } = {}): Promise<void> {
  const { build } = await import("vite");
  await build({
    configFile: join(WEB_DIR, "vite.config.ts"),
    logLevel: opts.quiet ? "error" : "warn",
    build: { outDir: opts.outDir ?? WEB_DIST, emptyOutDir: true },
  });
}

/** Most files the static server holds open at once; further requests wait for a free slot. */
export const MAX_OPEN_FILES = 64;
/** A connection with no activity for this long is closed (a client that stopped reading). */
export const IDLE_TIMEOUT_MS = 60_000;

export interface StaticServerOptions {
  host?: string;
  port?: number;
  /** Most files open at once (default MAX_OPEN_FILES). */
  maxOpenFiles?: number;
  /** Close connections idle for this long (default IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number;
  /** Where problems that have no response to go to are reported (read errors, accept failures). Default: stderr. */
  log?: (line: string) => void;
}

/** A counting semaphore: at most `limit` holders; the others wait in order. */
class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(limit: number) {
    this.free = limit;
  }
  acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

const TEXT = { "Content-Type": "text/plain; charset=utf-8" };

/** The HTTP status for a failed open: missing 404, not allowed 403, out of descriptors 503, else 500. */
function failureStatus(e: unknown): number {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR" || code === "ENAMETOOLONG" || code === "ELOOP") return 404;
  if (code === "EACCES" || code === "EPERM") return 403;
  if (code === "EMFILE" || code === "ENFILE") return 503;
  return 500;
}

const FAILURE_TEXT: Record<number, string> = {
  403: "forbidden",
  404: "not found",
  500: "internal error",
  503: "busy, retry",
};

/**
 * Serve the files of `root` over HTTP (GET and HEAD). Resolves once listening; rejects with a clear
 * message if the port is taken.
 *
 * Every file is opened once, checked through its handle (a regular file; a folder serves its
 * index.html), and streamed with stream.pipeline, which closes the file however the response ends: a
 * finished download, a client that disconnects after the first chunk, a read error (then the
 * response is cut short, since its status is already sent). At most `maxOpenFiles` files are open at
 * once, so a burst of clients cannot exhaust the process's descriptors; failures to open are 404,
 * 403, 503 (out of descriptors) or 500, never an exception. Paths that decode to outside `root` are 403.
 */
export function startStaticServer(
  root: string,
  opts: StaticServerOptions = {},
): Promise<{ server: Server; url: string }> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 0;
  const base = resolve(root);
  const slots = new Slots(opts.maxOpenFiles ?? MAX_OPEN_FILES);
  const log = opts.log ?? ((line: string) => process.stderr.write(`handprop serve: ${line}\n`));

  const fail = (res: ServerResponse, status: number, detail = ""): void => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string | number> = { ...SERVE_HEADERS, ...TEXT };
    if (status === 503) headers["Retry-After"] = 1;
    res.writeHead(status, headers).end(`${FAILURE_TEXT[status] ?? "error"}${detail}\n`);
  };

  /** Open `file` (a folder: its index.html), or answer the failure; null when answered. */
  async function openFile(
    file: string,
    res: ServerResponse,
    shown: string,
  ): Promise<{ handle: FileHandle; size: number; path: string } | null> {
    for (let depth = 0; depth < 2; depth++) {
      let handle: FileHandle;
      try {
        // O_NONBLOCK: a FIFO in the folder would otherwise block the open (and a libuv thread) until
        // a writer came; it is then refused below as not a regular file. Regular files are unaffected.
        handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (e) {
        const status = failureStatus(e);
        if (status >= 500) log(`cannot open ${printable(file)}: ${printable((e as Error).message)}`);
        fail(res, status, status === 404 ? `: ${shown}` : "");
        return null;
      }
      let st: Stats;
      try {
        st = await handle.stat();
      } catch (e) {
        await handle.close().catch(() => undefined);
        log(`cannot stat ${printable(file)}: ${printable((e as Error).message)}`);
        fail(res, 500);
        return null;
      }
      if (st.isFile()) return { handle, size: st.size, path: file };
      await handle.close().catch(() => undefined);
      if (!st.isDirectory()) break;
      file = join(file, "index.html");
    }
    fail(res, 404, `: ${shown}`);
    return null;
  }

  async function respond(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...SERVE_HEADERS, Allow: "GET, HEAD" }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      res.writeHead(400, { ...SERVE_HEADERS, ...TEXT }).end("bad request\n");
      return;
    }
    if (pathname.includes("\0")) {
      res.writeHead(400, { ...SERVE_HEADERS, ...TEXT }).end("bad request\n");
      return;
    }
    const file = resolve(base, "." + pathname);
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403, { ...SERVE_HEADERS, ...TEXT }).end("forbidden\n");
      return;
    }
    await slots.acquire();
    let streaming = false; // once a stream owns the open file, its 'close' frees the slot
    try {
      if (res.destroyed || req.socket.destroyed) return; // the client left while waiting
      const opened = await openFile(file, res, JSON.stringify(printable(pathname)));
      if (!opened) return;
      const { handle, size, path } = opened;
      const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? "application/octet-stream";
      res.writeHead(200, { ...SERVE_HEADERS, "Content-Type": type, "Content-Length": size });
      if (req.method === "HEAD" || size === 0) {
        await handle.close().catch(() => undefined);
        res.end();
        return;
      }
      // Exactly the bytes announced, even if the file grows meanwhile; the stream closes the handle
      // when it ends or is destroyed, and only then is the slot free again.
      const stream = handle.createReadStream({ start: 0, end: size - 1 });
      stream.once("close", () => {
        slots.release();
      });
      streaming = true;
      // The response is ended here, not by pipeline, so that a file that shrank since its size was sent
      // cuts the response short (the client sees an error) instead of leaving it waiting for bytes.
      try {
        await pipeline(stream, res, { end: false });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        // A client that disconnects early is ordinary; anything else is worth a line.
        if (code !== "ERR_STREAM_PREMATURE_CLOSE" && code !== "ECONNRESET" && code !== "EPIPE") {
          log(`reading ${printable(path)} failed: ${printable((e as Error).message)}`);
        }
        res.destroy();
        return;
      }
      if (stream.bytesRead === size) res.end();
      else {
        log(`${printable(path)} shrank to ${stream.bytesRead} bytes while being sent (${size} announced)`);
        res.destroy();
      }
    } finally {
      if (!streaming) slots.release();
    }
  }

  const server = createServer((req, res) => {
    respond(req, res).catch((e: unknown) => {
      log(`request ${printable(req.url ?? "")} failed: ${printable(e instanceof Error ? e.message : String(e))}`);
      fail(res, 500);
    });
  });
  // A client that stops reading holds a file slot; after this long without any progress its
  // connection is destroyed (no 'timeout' listener: Node then destroys the socket), which closes the file.
  server.setTimeout(opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS);
  return new Promise((resolvePromise, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE")
        reject(
          new Error(
            `port ${port} on ${host} is already in use: pass --port N for another port (or --port 0 for any free one)`,
          ),
        );
      else if (e.code === "EACCES")
        reject(new Error(`no permission to listen on ${host}:${port}: pick a port above 1023`));
      else if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND")
        reject(new Error(`cannot listen on host '${printable(host)}': not an address of this machine`));
      else reject(e);
    });
    server.listen(port, host, () => {
      // Once listening, errors (a failed accept when the process is out of descriptors) are reported
      // and the server carries on: with no listener, Node would throw them and end the process.
      let lastLogged = 0;
      server.on("error", (e: NodeJS.ErrnoException) => {
        const now = Date.now();
        if (now - lastLogged > 5000) log(`${e.code ?? "error"}: ${printable(e.message)} (the server keeps running)`);
        lastLogged = now;
      });
      const addr = server.address();
      const actual = typeof addr === "object" && addr !== null ? addr.port : port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolvePromise({ server, url: `http://${shown}:${actual}/` });
    });
  });
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The warning `serve` prints for a host other machines can reach (null for a loopback host). */
export function networkWarning(host: string, port: number): string | null {
  if (isLoopbackHost(host)) return null;
  const where = host === "0.0.0.0" || host === "::" ? "every network interface" : `the address ${printable(host)}`;
  return (
    `handprop serve: warning: listening on ${where}: the playground is reachable from the network, by anyone ` +
    `who can connect to this machine on ${port === 0 ? "the port below" : `port ${port}`}. Use --host 127.0.0.1 ` +
    `(the default) to keep it on this machine.`
  );
}

export const serveCommand = defineCommand(
  {
    name: "serve",
    summary: "Build (if needed) and serve the interactive playground: the article's network and MNIST in the browser",
    flags: {
      port: { kind: "uint", help: "port to listen on (0: any free port)", default: 5173, meta: "N" },
      host: { kind: "string", help: "address to listen on", default: "127.0.0.1", meta: "ADDR" },
      rebuild: { kind: "boolean", help: "rebuild the page even if web/dist is up to date" },
      dir: { kind: "string", help: "serve this already-built folder instead of web/dist (no build)", meta: "PATH" },
    },
  },
  async (v) => {
    const port = v.port;
    if (port > 65535) throw new UsageError(`handprop serve: --port must be between 0 and 65535, got ${port}`);
    const host = v.host;
    let root = WEB_DIST;
    if (typeof v.dir === "string") {
      root = resolve(v.dir);
      if (!existsSync(join(root, "index.html")))
        throw new UsageError(`handprop serve: --dir ${v.dir} has no index.html (build it with: npm run build:web)`);
    } else if (PAGES_PREBUILT) {
      if (v.rebuild)
        throw new UsageError(
          "handprop serve: --rebuild needs a checkout: the installed package ships its pages pre-built",
        );
      if (!existsSync(join(WEB_DIST, "index.html"))) {
        throw new Error(
          `the pre-built pages are missing (${WEB_DIST}): this copy of handprop was packed without its build; reinstall handprop`,
        );
      }
    } else if (v.rebuild || webBuildIsStale()) {
      process.stderr.write("handprop serve: building the page (vite build web)…\n");
      await buildWeb();
    }
    const warning = networkWarning(host, port);
    if (warning !== null) process.stderr.write(warning + "\n");
    const { server, url } = await startStaticServer(root, { host, port });
    process.stdout.write(
      `handprop playground: ${url}\n  page 1, the article's network:  ${url}\n` +
        `  page 2, MNIST in the browser:   ${url}mnist.html\n` +
        `  page 3, the backward pass:       ${url}backward.html\nPress Ctrl+C to stop.\n`,
    );
    await new Promise<void>((done) => {
      const stop = () => {
        server.close(() => {
          done();
        });
        server.closeAllConnections();
      };
      process.once("SIGINT", stop);
      process.once("SIGTERM", stop);
    });
    return 0;
  },
);
