// Shared set-up for the browser tests: build the playground once per test file into a temporary
// folder, serve it on a free port with `handprop serve`'s static server, and drive Debian's Chromium
// with playwright-core. Console errors and uncaught page errors are collected so every test can
// assert there were none.
//
// Chromium: /usr/bin/chromium (apt-get install chromium; .ci/run installs it), or $HANDPROP_CHROMIUM.
// Missing (or not starting: `chromium --version` is the probe), the browser tests SKIP, and one line per
// test run says how to enable them — except where $CI is set, where they FAIL with that instruction.
// HANDPROP_SKIP_E2E=1 skips them anywhere.

import { spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildWeb, REPO_ROOT, startStaticServer } from "../../src/cli/serve.ts";

export const CHROMIUM = process.env.HANDPROP_CHROMIUM ?? "/usr/bin/chromium";
const ENABLE = "apt-get install -y --no-install-recommends chromium, or set HANDPROP_CHROMIUM to a Chromium binary";
const ON_CI = (process.env.CI ?? "") !== "" && process.env.CI !== "0" && process.env.CI !== "false";

/** Why Chromium cannot be used here, or null when `chromium --version` answers. */
function chromiumProblem(): string | null {
  // Debian's /usr/bin/chromium is a shell script: it can exist while the browser itself is missing.
  if (!existsSync(CHROMIUM)) return `no Chromium at ${CHROMIUM}`;
  const probe = spawnSync(CHROMIUM, ["--version"], { encoding: "utf8", timeout: 15000 });
  if (probe.status === 0 && /chrom/i.test(probe.stdout)) return null;
  const why = probe.error?.message ?? (probe.stderr.trim().split("\n").pop() || `exit code ${String(probe.status)}`);
  return `${CHROMIUM} does not start (${why})`;
}

export const CHROMIUM_PROBLEM = process.env.HANDPROP_SKIP_E2E === "1" ? null : chromiumProblem();

/**
 * The `skip` option of every browser test: false (run), or the reason. Without a browser the tests
 * skip, except on CI, where openSite() then fails with the instruction.
 */
export const SKIP_E2E: string | false =
  process.env.HANDPROP_SKIP_E2E === "1"
    ? "HANDPROP_SKIP_E2E=1"
    : CHROMIUM_PROBLEM !== null && !ON_CI
      ? "no Chromium (apt-get install chromium)"
      : false;

if (SKIP_E2E !== false && CHROMIUM_PROBLEM !== null) printSkipNoticeOnce(CHROMIUM_PROBLEM);

/**
 * node --test runs each test file in its own process, all children of one runner: the first file to
 * create a marker named after the runner prints the notice, so a run shows it once, not once per file.
 */
function printSkipNoticeOnce(problem: string): void {
  const notice = `handprop: browser tests skipped: ${problem}. To run them: ${ENABLE}.\n`;
  if (process.env.NODE_TEST_CONTEXT === undefined) {
    process.stderr.write(notice); // a test file run on its own: nobody else prints it
    return;
  }
  let runner = String(process.ppid);
  try {
    runner += "-" + readFileSync(`/proc/${runner}/stat`, "utf8").split(") ")[1].split(" ")[19]; // start time: pids recur
  } catch {
    // not Linux: the parent's pid alone
  }
  try {
    closeSync(openSync(join(tmpdir(), `handprop-e2e-notice-${runner}`), "wx"));
  } catch {
    return; // another test file of this run printed it
  }
  process.stderr.write(notice);
}

export const ARTIFACTS = join(REPO_ROOT, "test-artifacts");

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface Site {
  url: string;
  context: BrowserContext;
  /** Console errors, page errors, failed requests and requests to other origins, per page. */
  errors: Map<Page, string[]>;
  newPage(path: string, viewport?: { width: number; height: number }): Promise<Page>;
  screenshot(page: Page, name: string, fullPage?: boolean): Promise<string>;
  close(): Promise<void>;
}

/** Build, serve and launch. Throws a clear error when Chromium is missing. */
export async function openSite(): Promise<Site> {
  if (CHROMIUM_PROBLEM !== null) {
    const where = ON_CI ? "CI is set, so the browser tests must run" : "the browser tests need it";
    throw new Error(`${CHROMIUM_PROBLEM}; ${where}: ${ENABLE} (HANDPROP_SKIP_E2E=1 skips them)`);
  }
  const work = mkdtempSync(join(tmpdir(), "handprop-e2e-"));
  const outDir = join(work, "dist");
  await buildWeb({ outDir, quiet: true });
  const srv = (await startStaticServer(outDir, { host: "127.0.0.1", port: 0 })).server;
  let ctx: BrowserContext;
  try {
    ctx = await chromium.launchPersistentContext(join(work, "profile"), {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
    });
  } catch (e) {
    srv.close();
    rmSync(work, { recursive: true, force: true });
    throw e;
  }
  const errors = new Map<Page, string[]>();
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    url: served(srv),
    context: ctx,
    errors,
    async newPage(path, viewport = { width: 1280, height: 800 }) {
      const page = await ctx.newPage();
      const list: string[] = [];
      errors.set(page, list);
      page.on("console", (m) => {
        if (m.type() === "error") list.push(`console.error: ${m.text()}`);
      });
      page.on("pageerror", (e) => list.push(`page error: ${e.message}`));
      page.on("requestfailed", (r) => list.push(`request failed: ${r.url()} (${r.failure()?.errorText ?? "?"})`));
      // Offline means no request leaves the page's own origin (no CDN fonts, scripts or styles).
      const origin = new URL(served(srv)).origin;
      page.on("request", (r) => {
        const u = r.url();
        if (!u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin)
          list.push(`request to another origin: ${u}`);
      });
      await page.setViewportSize(viewport);
      await page.goto(new URL(path, served(srv)).href, { waitUntil: "load" });
      return page;
    },
    async screenshot(page, name, fullPage = true) {
      const file = join(ARTIFACTS, `${name}.png`);
      if (fullPage) {
        await page.evaluate(() => {
          window.scrollTo(0, 0); // keep the sticky header at the top of a full-page shot
        });
      }
      await page.screenshot({ path: file, fullPage });
      return file;
    },
    async close() {
      await ctx.close();
      await new Promise<void>((done) =>
        srv.close(() => {
          done();
        }),
      );
      rmSync(work, { recursive: true, force: true });
    },
  };
}

function served(server: Server): string {
  const addr = server.address();
  if (typeof addr !== "object" || addr === null) throw new Error("e2e: the static server has no address");
  return `http://127.0.0.1:${addr.port}/`;
}
