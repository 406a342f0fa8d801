// Regenerate the README's screenshots (docs/img/page1.png, docs/img/page2.png) in headless Chromium:
//   node --import tsx web/scripts/screenshots.ts
// Page 1 at epoch 160 of the article's run (mid-descent, where the gradients are large), x3 and
// w1[0,1] selected; page 2 after one epoch of in-browser training with a digit drawn. Uses the browser-test harness (test/e2e/harness.ts).

import { renameSync } from "node:fs";
import { join } from "node:path";
import { openSite } from "../../test/e2e/harness.ts";
import { REPO_ROOT } from "../../src/cli/serve.ts";

const IMG = join(REPO_ROOT, "docs", "img");

const site = await openSite();
try {
  const p1 = await site.newPage("index.html", { width: 1280, height: 800 });
  await p1.fill("#epochs", "160");
  await p1.click("#btn-finish");
  await p1.waitForFunction(() => document.getElementById("status")!.dataset.running === "false");
  await p1.click("#tab-2");
  await p1.click("#chip-w1-0-1");
  await p1.mouse.move(0, 0);
  await p1.evaluate(() => {
    window.scrollTo(0, 0); // the sticky header belongs at the top of a full-page shot
  });
  await p1.waitForTimeout(300);
  await p1.screenshot({ path: join(IMG, "page1.tmp.png"), fullPage: true });
  renameSync(join(IMG, "page1.tmp.png"), join(IMG, "page1.png"));

  const p2 = await site.newPage("mnist.html", { width: 1280, height: 800 });
  await p2.click("#btn-train");
  await p2.waitForFunction(() => document.getElementById("train-status")!.dataset.state === "done", null, {
    timeout: 120000,
  });
  const box = (await p2.locator("#pad").boundingBox())!;
  const at = (x: number, y: number) => [box.x + (x / 280) * box.width, box.y + (y / 280) * box.height] as const;
  // A "3": two arcs.
  await p2.mouse.move(...at(85, 70));
  await p2.mouse.down();
  for (const [x, y] of [
    [120, 50],
    [170, 52],
    [195, 85],
    [180, 120],
    [140, 135],
    [185, 150],
    [200, 190],
    [175, 228],
    [125, 238],
    [85, 215],
  ])
    await p2.mouse.move(...at(x, y), { steps: 5 });
  await p2.mouse.up();
  await p2.evaluate(() => {
    window.scrollTo(0, 0);
  });
  await p2.waitForTimeout(300);
  await p2.screenshot({ path: join(IMG, "page2.tmp.png"), fullPage: true });
  renameSync(join(IMG, "page2.tmp.png"), join(IMG, "page2.png"));

  for (const [page, errors] of site.errors) if (errors.length > 0) console.error(page.url(), errors);
  console.log(`screenshots: wrote ${join(IMG, "page1.png")} and ${join(IMG, "page2.png")}`);
} finally {
  await site.close();
}
