// `handprop serve` as a process: prints its URL, serves files with the isolation headers, refuses
// paths outside its folder, stops on SIGINT, and says clearly when the port is taken. Serves a tiny
// folder through --dir, so no build is needed (the browser tests cover the real build).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/cli/serve.ts";

const BIN = join(REPO_ROOT, "bin", "handprop.mjs");

function site(): string {
  const dir = mkdtempSync(join(tmpdir(), "handprop-serve-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(dir, "a.js"), "export {};");
  return dir;
}

/** Start `handprop serve` and resolve with the URL it prints. */
function startServe(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, "serve", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /handprop playground: (http:\/\/\S+)/.exec(out);
      if (m) resolve({ child, url: m[1] });
    });
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("exit", (code) => {
      reject(new Error(`serve exited with ${code}: ${err}`));
    });
  });
}

/** GET or HEAD with a raw path (no client-side normalisation of "..") */
function get(
  url: string,
  path: string,
  method = "GET",
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
      });
    });
    req.on("error", reject);
    req.end();
  });
}

test("handprop serve prints its URL, serves with COOP/COEP, stays inside its folder and stops on SIGINT", async () => {
  const dir = site();
  const { child, url } = await startServe(["--dir", dir, "--port", "0"]);
  try {
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
    const index = await get(url, "/");
    assert.equal(index.status, 200);
    assert.equal(index.headers["content-type"], "text/html; charset=utf-8");
    assert.equal(index.headers["cross-origin-opener-policy"], "same-origin");
    assert.equal(index.headers["cross-origin-embedder-policy"], "require-corp");
    assert.equal((await get(url, "/a.js")).headers["content-type"], "text/javascript; charset=utf-8");
    assert.equal((await get(url, "/a.js", "HEAD")).body, "");
    assert.equal((await get(url, "/missing.js")).status, 404);
    assert.equal((await get(url, "/../package.json")).status, 404); // the URL parser drops the "..": a file of dir
    assert.equal((await get(url, "/%2e%2e/package.json")).status, 404);
    assert.equal((await get(url, "/..%2f..%2fpackage.json")).status, 403); // decodes to a path outside dir
    assert.equal((await get(url, "/", "POST")).status, 405);
  } finally {
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    child.kill("SIGINT");
    assert.equal(await exited, 0);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("handprop serve says clearly when the port is taken", async () => {
  const dir = site();
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = spawnSync(process.execPath, [BIN, "serve", "--dir", dir, "--port", String(port)], {
      encoding: "utf8",
      timeout: 20000,
    });
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `handprop serve: port ${port} on 127.0.0.1 is already in use: pass --port N for another port (or --port 0 for any free one)`,
    );
  } finally {
    blocker.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("handprop serve rejects bad flags with a one-line usage error", () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [BIN, "serve", ...args], { encoding: "utf8", timeout: 20000 });
  const badPort = run("--port", "70000");
  assert.equal(badPort.status, 2);
  assert.equal(badPort.stderr.trim(), "handprop serve: --port must be between 0 and 65535, got 70000");
  const noIndex = run("--dir", tmpdir() + "/handprop-no-such-dir");
  assert.equal(noIndex.status, 2);
  assert.match(noIndex.stderr, /^handprop serve: --dir .* has no index.html/);
  const help = run("--help");
  assert.equal(help.status, 0);
  assert.match(help.stdout, /--port <N>/);
});
