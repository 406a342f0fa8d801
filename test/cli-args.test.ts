// src/cli/args.ts: defineCommand types a command's parsed flags from its flag list (checked by the
// type checker: this file is part of `npm run typecheck`), and parseFlags keeps its range checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { UsageError, defineCommand, parseFlags } from "../src/cli/args.ts";

test("defineCommand: each flag's value has the type its kind, choices and default give", async () => {
  let seen: unknown = null;
  const cmd = defineCommand(
    {
      name: "demo",
      summary: "a command for the test",
      positionals: true,
      flags: {
        count: { kind: "uint", min: 1, help: "a count" },
        mode: { kind: "string", choices: ["fast", "exact"], help: "a choice" },
        rate: { kind: "number", above: 0, default: 0.5, help: "a number with a default" },
        path: { kind: "string", nonEmpty: true, help: "a path", meta: "FILE" },
        verbose: { kind: "boolean", help: "a switch" },
      },
    },
    (v, positionals) => {
      const count: number | undefined = v.count;
      const mode: "fast" | "exact" | undefined = v.mode;
      const rate: number = v.rate; // a default: never undefined
      const path: string | undefined = v.path;
      const verbose: boolean | undefined = v.verbose;
      // @ts-expect-error a choice flag is one of its choices, not any string
      const narrower: "fast" | undefined = v.mode;
      seen = { count, mode, rate, path, verbose, positionals, narrower };
      return 0;
    },
  );
  const { values, positionals } = parseFlags(cmd.spec, ["--count", "3", "--mode", "exact", "--verbose", "x"]);
  assert.equal(await cmd.run(values, positionals), 0);
  assert.deepEqual(seen, {
    count: 3,
    mode: "exact",
    rate: 0.5,
    path: undefined,
    verbose: true,
    positionals: ["x"],
    narrower: "exact",
  });
  const cases: [string[], RegExp][] = [
    [["--count", "0"], /^handprop demo: --count must be at least 1, got 0$/],
    [["--rate", "0"], /^handprop demo: --rate must be > 0, got 0$/],
    [["--mode", "slow"], /^handprop demo: --mode expects one of fast, exact, got 'slow'$/],
    [["--path", " "], /^handprop demo: --path expects a path, got ' '$/],
  ];
  for (const [argv, message] of cases)
    assert.throws(
      () => parseFlags(cmd.spec, argv),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
    );
});
