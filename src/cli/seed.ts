// `handprop seed`: the article's experiment, as its report or as JSON.

import { ARTICLE_DEFAULTS, articleReport, runArticle } from "../examples/article.ts";
import { UsageError, defineCommand } from "./args.ts";

export const seedCommand = defineCommand(
  {
    name: "seed",
    summary: "Train the article's tiny CNN (four 3×3 images, one 2×2 kernel) and print its report",
    flags: {
      seed: { kind: "uint", help: "NumPy seed for the initial weights", default: ARTICLE_DEFAULTS.seed, meta: "N" },
      epochs: { kind: "uint", help: "passes over the four images", default: ARTICLE_DEFAULTS.epochs, meta: "N" },
      lr: { kind: "number", help: "SGD learning rate", default: ARTICLE_DEFAULTS.lr, meta: "X", above: 0 },
      json: { kind: "boolean", help: "print {w1, w2, costBefore, costAfter, startOut, finalOut} as JSON" },
    },
  },
  (v) => {
    const seed = v.seed;
    if (seed > 0xffffffff) throw new UsageError(`handprop seed: --seed must be between 0 and 2**32 - 1, got ${seed}`);
    const result = runArticle({ seed, epochs: v.epochs, lr: v.lr });
    process.stdout.write((v.json ? JSON.stringify(result) : articleReport(result)) + "\n");
    return 0;
  },
);
