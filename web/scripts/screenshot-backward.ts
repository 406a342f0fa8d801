// Regenerate the README's screenshot of page 3 (docs/img/backward.png) in headless Chromium:
//   node --import tsx web/scripts/screenshot-backward.ts
// Test image 0 (a 7) against the runner-up label, conv 1's kernel weight W[2,0,1,2] selected: the
// derivation, the saliency map and the first gradient maps. Uses the browser-test harness.

import { renameSync } from "node:fs";
import { join } from "node:path";
import { openSite } from "../../test/e2e/harness.ts";
import { REPO_ROOT } from "../../src/cli/serve.ts";

const IMG = join(REPO_ROOT, "docs", "img");

const site = await openSite();
try {
  const page = await site.newPage("backward.html", { width: 1280, height: 1180 });
  await page.waitForSelector("body[data-ready='true']", { timeout: 30000 });
  await page.selectOption("#bw-tensor", "p:0:weight");
  await page.fill("#bw-index", String(2 * 25 + 1 * 5 + 2));
  await page.click("#bw-explain");
  await page.click("#bw-maps details summary");
  await page.mouse.move(0, 0);
  await page.waitForTimeout(300);
  await page.screenshot({ path: join(IMG, "backward.tmp.png"), fullPage: false });
  renameSync(join(IMG, "backward.tmp.png"), join(IMG, "backward.png"));
  for (const [p, errors] of site.errors) if (errors.length > 0) console.error(p.url(), errors);
  console.log(`screenshot: wrote ${join(IMG, "backward.png")}`);
} finally {
  await site.close();
}
