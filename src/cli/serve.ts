// `handprop serve`: build the playground (web/) when its sources changed, then serve the build on
// 127.0.0.1 with a small static server. Also used by the browser tests (test/e2e/).
//
// A production build served statically is the robust choice: nothing compiles on request, the pages
// work offline (KaTeX's fonts and uPlot are bundled), and the server sends the cross-origin isolation
// headers (COOP/COEP) that SharedArrayBuffer needs, so the pages behave as they would when deployed.

import { createServer, type Server } from "node:http";
import { createReadStream, existsSync, readdirSync, statSync } from "node:fs";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "./main.ts";
import { UsageError } from "./args.ts";

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

/** Serve the files of `root` over HTTP. Resolves once listening; rejects with a clear message if the port is taken. */
export function startStaticServer(root: string, opts: { host?: string; port?: number } = {}): Promise<{ server: Server; url: string }> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port ?? 0;
  const base = resolve(root);
  const server = createServer((req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { ...SERVE_HEADERS, Allow: "GET, HEAD" }).end();
      return;
    }
    let pathname: string;
    try {
      pathname = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
    } catch {
      res.writeHead(400, SERVE_HEADERS).end("bad request\n");
      return;
    }
    let file = resolve(base, "." + pathname);
    if (file !== base && !file.startsWith(base + sep)) {
      res.writeHead(403, SERVE_HEADERS).end("forbidden\n");
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = join(file, "index.html");
    if (!existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { ...SERVE_HEADERS, "Content-Type": "text/plain; charset=utf-8" }).end(`not found: ${pathname}\n`);
      return;
    }
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? "application/octet-stream";
    res.writeHead(200, { ...SERVE_HEADERS, "Content-Type": type, "Content-Length": statSync(file).size });
    if (req.method === "HEAD") res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((resolvePromise, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EADDRINUSE") reject(new Error(`port ${port} on ${host} is already in use: pass --port N for another port (or --port 0 for any free one)`));
      else if (e.code === "EACCES") reject(new Error(`no permission to listen on ${host}:${port}: pick a port above 1023`));
      else if (e.code === "EADDRNOTAVAIL" || e.code === "ENOTFOUND") reject(new Error(`cannot listen on host '${host}': not an address of this machine`));
      else reject(e);
    });
    server.listen(port, host, () => {
      const addr = server.address();
      const actual = typeof addr === "object" && addr !== null ? addr.port : port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolvePromise({ server, url: `http://${shown}:${actual}/` });
    });
  });
}

export const serveCommand: Command = {
  spec: {
    name: "serve",
    summary: "Build (if needed) and serve the interactive playground: the article's network and MNIST in the browser",
    flags: {
      port: { kind: "uint", help: "port to listen on (0: any free port)", default: 5173, meta: "N" },
      host: { kind: "string", help: "address to listen on", default: "127.0.0.1", meta: "ADDR" },
      rebuild: { kind: "boolean", help: "rebuild the page even if web/dist is up to date" },
      dir: { kind: "string", help: "serve this already-built folder instead of web/dist (no build)", meta: "PATH" },
    },
  },
  async run(v) {
    const port = v.port as number;
    if (port > 65535) throw new UsageError(`handprop serve: --port must be between 0 and 65535, got ${port}`);
    const host = v.host as string;
    let root = WEB_DIST;
    if (typeof v.dir === "string") {
      root = resolve(v.dir);
      if (!existsSync(join(root, "index.html"))) throw new UsageError(`handprop serve: --dir ${v.dir} has no index.html (build it with: npm run build:web)`);
    } else if (PAGES_PREBUILT) {
      if (v.rebuild) throw new UsageError("handprop serve: --rebuild needs a checkout: the installed package ships its pages pre-built");
      if (!existsSync(join(WEB_DIST, "index.html"))) {
        throw new Error(`the pre-built pages are missing (${WEB_DIST}): this copy of handprop was packed without its build; reinstall handprop`);
      }
    } else if (v.rebuild || webBuildIsStale()) {
      process.stderr.write("handprop serve: building the page (vite build web)…\n");
      await buildWeb();
    }
    const { server, url } = await startStaticServer(root, { host, port });
    process.stdout.write(`handprop playground: ${url}\n  page 1, the article's network:  ${url}\n  page 2, MNIST in the browser:   ${url}mnist.html\nPress Ctrl+C to stop.\n`);
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
};
