// `handprop gradcheck`: finite-difference checks of every layer, loss and a small model; exit 1 on failure.

import { runGradcheckSuite, summarize, type SuiteSummary } from "../nn/checks.ts";
import { defineCommand } from "./args.ts";

export const gradcheckCommand = defineCommand(
  {
    name: "gradcheck",
    summary: "Check every layer's hand-written backward against finite differences (float64)",
    flags: {
      seed: { kind: "uint", help: "seed for the randomized configurations", default: 0, meta: "N" },
      configs: { kind: "uint", help: "randomized configurations per layer type", default: 6, meta: "N", min: 1 },
      tolerance: { kind: "number", help: "maximum relative error allowed", default: 1e-6, meta: "X", above: 0 },
      verbose: { kind: "boolean", help: "print every configuration, not only the per-layer summary" },
      json: { kind: "boolean", help: 'print {"ok", "checks": [{"name", "maxRelError", "ok", "dyWritten"}]} as JSON' },
    },
  },
  (v) => {
    const tolerance = v.tolerance;
    const checks = runGradcheckSuite({ seed: v.seed, configsPerLayer: v.configs, tolerance }, (c) => {
      if (v.verbose && !v.json) {
        const e = c.result.maxRelError.toExponential(2);
        const dy = c.result.dyWritten ? "  (backward wrote into dy)" : "";
        process.stdout.write(
          `  ${c.result.ok ? "ok  " : "FAIL"} ${c.name.padEnd(20)} ${e.padStart(9)}  ${c.config}${dy}\n`,
        );
      }
    });
    const rows = summarize(checks);
    const ok = rows.every((r) => r.ok);
    if (v.json) {
      process.stdout.write(
        JSON.stringify({
          ok,
          tolerance,
          checks: rows.map((r) => ({
            name: r.name,
            maxRelError: r.maxRelError,
            ok: r.ok,
            configs: r.configs,
            skippedKinks: r.skippedKinks,
            dyWritten: r.dyWritten,
          })),
        }) + "\n",
      );
      return ok ? 0 : 1;
    }
    const w = Math.max(...rows.map((r) => r.name.length), 5);
    const lines = [`${"layer".padEnd(w)}  configs  max rel error  kinks skipped  result`];
    for (const r of rows) {
      lines.push(
        `${r.name.padEnd(w)}  ${String(r.configs).padStart(7)}  ${r.maxRelError.toExponential(2).padStart(13)}  ${String(r.skippedKinks).padStart(13)}  ${r.ok ? "ok" : "FAIL"}`,
      );
    }
    lines.push("", verdict(rows, tolerance));
    process.stdout.write(lines.join("\n") + "\n");
    return ok ? 0 : 1;
  },
);

/**
 * The summary's last line: every check passed, or which layers failed and why — past the tolerance (or, for a
 * layer that left dy alone, failed otherwise: too many kinks) and/or wrote into dy; a layer that wrote into dy
 * and is also past the tolerance is named under both.
 */
export function verdict(rows: readonly SuiteSummary[], tolerance: number): string {
  if (rows.every((r) => r.ok)) return `all ${rows.length} checks pass (max relative error ≤ ${tolerance})`;
  const failed = (pick: (r: SuiteSummary) => boolean) =>
    rows
      .filter((r) => !r.ok && pick(r))
      .map((r) => r.name)
      .join(", ");
  const inexact = failed((r) => !r.dyWritten || r.maxRelError > tolerance);
  const writers = failed((r) => r.dyWritten);
  const reasons = [
    inexact && `${inexact} exceed ${tolerance}`,
    writers && `${writers}: backward wrote into the dy it was given (it belongs to the layer above)`,
  ];
  return "FAILED: " + reasons.filter(Boolean).join("; ");
}
