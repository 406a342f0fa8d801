// handprop's command line: `handprop <command> [flags]`. Each command declares its flags once in
// args.ts's format; usage errors print one line and exit 2, failures exit 1.

import { UsageError, commandHelp, parseFlags, type Command, type FlagValues } from "./args.ts";
import { seedCommand } from "./seed.ts";
import { gradcheckCommand } from "./gradcheck.ts";
import { benchCommand } from "./bench.ts";
import { serveCommand } from "./serve.ts";
import { trainCommand } from "./train.ts";
import { evalCommand } from "./eval.ts";
import { predictCommand } from "./predict.ts";
import { exportCommand } from "./export.ts";
import { printable } from "../io/text.ts";

export type { Command } from "./args.ts";

export const commands: Command[] = [
  seedCommand,
  gradcheckCommand,
  benchCommand,
  serveCommand,
  trainCommand,
  evalCommand,
  predictCommand,
  exportCommand,
];

function globalHelp(): string {
  const lines = [
    "handprop — convolutional neural networks with every gradient derived by hand",
    "",
    "Usage: handprop <command> [options]      handprop <command> --help for a command's options",
    "",
    "Commands:",
  ];
  const w = Math.max(...commands.map((c) => c.spec.name.length));
  for (const c of commands) lines.push(`  ${c.spec.name.padEnd(w)}  ${c.spec.summary}`);
  lines.push("");
  for (const c of commands) lines.push(commandHelp(c.spec), "");
  return lines.join("\n");
}

/** Commands that load the checkout's dev dependencies (bench/ and the peers it measures against). */
const CHECKOUT_ONLY = new Set(["bench"]);

function isMissingModule(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND";
}

/** Run a command; where an installed copy lacks what a checkout-only command loads, say so instead of a stack. */
async function runNeedingCheckout(cmd: Command, values: FlagValues, positionals: string[]): Promise<number> {
  try {
    return await cmd.run(values, positionals);
  } catch (e) {
    if (!CHECKOUT_ONLY.has(cmd.spec.name) || !isMissingModule(e)) throw e;
    throw new Error(
      `needs a checkout of handprop with its dev dependencies (TensorFlow.js, ConvNetJS and bench/ are not part of the ` +
        `installed package): git clone the repository, npm install, then npx handprop ${cmd.spec.name} ` +
        `(${(e as Error).message.split("\n")[0]})`,
      { cause: e },
    );
  }
}

/** Text made printable line by line: the line breaks of a multi-line message stay. */
const printableLines = (s: string): string => s.split("\n").map(printable).join("\n");

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(globalHelp() + "\n");
    return name === undefined ? 2 : 0;
  }
  const cmd = commands.find((c) => c.spec.name === name);
  try {
    if (!cmd)
      throw new UsageError(
        `handprop: unknown command '${name}' (commands: ${commands.map((c) => c.spec.name).join(", ")})`,
      );
    if (rest.includes("--help") || rest.includes("-h")) {
      process.stdout.write(commandHelp(cmd.spec) + "\n");
      return 0;
    }
    const { values, positionals } = parseFlags(cmd.spec, rest);
    return await runNeedingCheckout(cmd, values, positionals);
  } catch (e) {
    // Messages may quote what a file holds (a model's or a node's name): escaped line by line, so control
    // characters (ESC sequences) never reach the terminal raw.
    if (e instanceof UsageError) {
      process.stderr.write(printableLines(e.message) + "\n");
      return 2;
    }
    process.stderr.write(
      `handprop ${printable(name)}: ${printableLines(e instanceof Error ? e.message : String(e))}\n`,
    );
    return 1;
  }
}
