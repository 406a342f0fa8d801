// The static server of `handprop serve` (issue 11, defects 1 and 16), in process on 127.0.0.1: HEAD,
// folders, bad paths, a file that shrinks while being sent (the client gets an error, not a hang),
// and the warning for a host other machines can reach.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, isLoopbackHost, networkWarning, startStaticServer } from "../src/cli/serve.ts";

let dir = "";
before(() => {
  dir = mkdtempSync(join(tmpdir(), "handprop-serve-static-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  mkdirSync(join(dir, "sub"));
  writeFileSync(join(dir, "sub", "index.html"), "sub");
  mkdirSync(join(dir, "empty"));
  writeFileSync(join(dir, "zero.txt"), "");
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(url: string, path: string, method = "GET"): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method, agent: false }, (res) => {
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

test("GET and HEAD, folders, empty files, bad paths", { timeout: 15_000 }, async () => {
  const { server, url } = await startStaticServer(dir);
  try {
    const head = await get(url, "/", "HEAD");
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    assert.equal(head.headers["content-length"], String("<!doctype html><title>t</title>".length));
    assert.equal(head.headers["cross-origin-embedder-policy"], "require-corp");
    assert.equal((await get(url, "/sub/")).body, "sub");
    assert.equal((await get(url, "/sub")).body, "sub");
    const empty = await get(url, "/empty/");
    assert.equal(empty.status, 404);
    assert.equal(empty.headers["cross-origin-opener-policy"], "same-origin");
    const zero = await get(url, "/zero.txt");
    assert.deepEqual([zero.status, zero.body, zero.headers["content-length"]], [200, "", "0"]);
    assert.equal((await get(url, "/a%00b")).status, 400);
    assert.equal((await get(url, "/%E0%A4%A")).status, 400);
    assert.equal((await get(url, "/..%2f..%2fetc%2fpasswd")).status, 403);
    // A FIFO is not a regular file: refused at once, without waiting for a writer.
    if (spawnSync("mkfifo", [join(dir, "pipe.js")]).status === 0)
      assert.equal((await get(url, "/pipe.js")).status, 404);
    const missing = await get(url, "/no%1b[31mpe");
    assert.equal(missing.status, 404);
    assert.ok(!missing.body.includes("\u001b"), missing.body); // the path is echoed with its escape character escaped
  } finally {
    server.close();
  }
});

test("a file that shrinks while being sent ends the response with an error, not a hang", async () => {
  const big = join(dir, "shrinking.bin");
  writeFileSync(big, new Uint8Array(8 * 2 ** 20));
  const logged: string[] = [];
  const { server, url } = await startStaticServer(dir, { log: (l) => logged.push(l) });
  const u = new URL(url);
  try {
    const outcome = await new Promise<string>((resolve) => {
      const req = request({ host: u.hostname, port: u.port, path: "/shrinking.bin", agent: false }, (res) => {
        let got = 0;
        res.pause(); // let the server fill the socket and stop reading, then cut the file
        setTimeout(() => {
          truncateSync(big, 1000);
          res.resume();
        }, 100);
        res.on("data", (d: Buffer) => (got += d.length));
        res.on("end", () => {
          resolve(`complete after ${got} bytes`);
        });
        res.on("error", () => {
          resolve("cut short");
        });
        res.on("aborted", () => {
          resolve("cut short");
        });
      });
      req.on("error", () => {
        resolve("cut short");
      });
      req.end();
    });
    assert.equal(outcome, "cut short");
    assert.equal(logged.length, 1);
    assert.match(logged[0], /shrinking\.bin shrank to \d+ bytes while being sent \(8388608 announced\)/);
    assert.equal((await get(url, "/")).status, 200);
  } finally {
    server.close();
  }
});

test("serve warns when the host is reachable from the network", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "::ffff:127.0.0.1"])
    assert.equal(isLoopbackHost(h), true, h);
  for (const h of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "example.com", "128.0.0.1"])
    assert.equal(isLoopbackHost(h), false, h);
  assert.equal(networkWarning("127.0.0.1", 5173), null);
  assert.match(
    networkWarning("0.0.0.0", 5173) ?? "",
    /warning: listening on every network interface: the playground is reachable from the network.*port 5173/,
  );
  // Through the CLI, with an address this machine does not have (TEST-NET-1): warned, then refused, nothing opened.
  const r = spawnSync(
    process.execPath,
    [join(REPO_ROOT, "bin", "handprop.mjs"), "serve", "--dir", dir, "--host", "192.0.2.1", "--port", "0"],
    { encoding: "utf8", timeout: 20000 },
  );
  assert.equal(r.status, 1, r.stderr);
  assert.match(
    r.stderr,
    /handprop serve: warning: listening on the address 192\.0\.2\.1: the playground is reachable from the network/,
  );
  assert.match(r.stderr, /cannot listen on host '192\.0\.2\.1': not an address of this machine/);
});
