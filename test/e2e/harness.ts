// Shared set-up for the browser tests: build the playground once per test file into a temporary
// folder, serve it on a free port with `handprop serve`'s static server, and drive Debian's Chromium
// with playwright-core. Console errors and uncaught page errors are collected so every test can
// assert there were none.
//
// Chromium: /usr/bin/chromium (apt-get install chromium; .ci/run installs it), or $HANDPROP_CHROMIUM.
// Missing, the tests FAIL with that instruction — unless HANDPROP_SKIP_E2E=1, which skips them.

import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Server } from "node:http";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { buildWeb, REPO_ROOT, startStaticServer } from "../../src/cli/serve.ts";

export const SKIP_E2E = process.env.HANDPROP_SKIP_E2E === "1" ? "HANDPROP_SKIP_E2E=1" : false;
export const CHROMIUM = process.env.HANDPROP_CHROMIUM ?? "/usr/bin/chromium";
export const ARTIFACTS = join(REPO_ROOT, "test-artifacts");

const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
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
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install it (apt-get install -y --no-install-recommends chromium), set HANDPROP_CHROMIUM to its path, or set HANDPROP_SKIP_E2E=1 to skip the browser tests`);
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
        if (!u.startsWith("data:") && !u.startsWith("blob:") && new URL(u).origin !== origin) list.push(`request to another origin: ${u}`);
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
      await new Promise<void>((done) => srv.close(() => {
        done();
      }));
      rmSync(work, { recursive: true, force: true });
    },
  };
}

function served(server: Server): string {
  const addr = server.address();
  if (typeof addr !== "object" || addr === null) throw new Error("e2e: the static server has no address");
  return `http://127.0.0.1:${addr.port}/`;
}
