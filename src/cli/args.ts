// A small declarative flag parser over node:util's parseArgs: every command lists its flags once,
// and the same list drives parsing, validation and --help. Bad input is a UsageError (exit code 2).
// The list also types the values: `defineCommand` hands its run function an object whose fields have
// the types the flags' kinds, choices and defaults give (FlagValuesOf), so commands need no casts.

import { parseArgs } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

export type FlagKind = "int" | "uint" | "number" | "string" | "boolean";

export interface FlagSpec {
  kind: FlagKind;
  help: string;
  default?: number | string | boolean;
  /** For string flags: the allowed values. */
  choices?: readonly string[];
  /** Value placeholder shown in --help, e.g. "N". */
  meta?: string;
  short?: string;
  /** Numbers: the smallest value allowed (inclusive). */
  min?: number;
  /** Numbers: the value must be strictly greater than this. */
  above?: number;
  /** Numbers: the largest value allowed (inclusive). */
  max?: number;
  /** Strings: the empty string is refused (e.g. a path). */
  nonEmpty?: boolean;
}

export interface CommandSpec<F extends Record<string, FlagSpec> = Record<string, FlagSpec>> {
  name: string;
  summary: string;
  usage?: string;
  flags: F;
  /** Whether positional arguments are accepted. */
  positionals?: boolean;
}

/** Parsed values of any command's flags (what main handles without knowing the command). */
export type FlagValues = Record<string, number | string | boolean | undefined>;

/** The value a flag parses to: boolean, one of its choices, a string, or a number. */
export type FlagValue<S extends FlagSpec> = S extends { kind: "boolean" }
  ? boolean
  : S extends { kind: "string"; choices: readonly (infer C extends string)[] }
    ? C
    : S extends { kind: "string" }
      ? string
      : number;

/** The parsed values of a command's flags: undefined when left out, unless the flag has a default. */
export type FlagValuesOf<F extends Record<string, FlagSpec>> = {
  [K in keyof F]: F[K] extends { default: number | string | boolean } ? FlagValue<F[K]> : FlagValue<F[K]> | undefined;
};

/** A command: its spec, and what it does with parsed flags (the exit code). */
export interface Command {
  spec: CommandSpec;
  run(values: FlagValues, positionals: string[]): Promise<number> | number;
}

/**
 * A command whose run function sees its flags typed by the spec (write the spec inline, or with
 * `satisfies`, so kinds and choices keep their literal types).
 */
export function defineCommand<const F extends Record<string, FlagSpec>>(
  spec: CommandSpec<F>,
  run: (values: FlagValuesOf<F>, positionals: string[]) => Promise<number> | number,
): Command & { spec: CommandSpec<F> } {
  // parseFlags(spec) gives every flag of the spec a value of its kind (or its default, or undefined).
  return { spec, run: (values, positionals) => run(values as FlagValuesOf<F>, positionals) };
}

/** The range checks of a numeric flag (min, above, max); a UsageError naming the flag. */
function checkRange(cmd: string, name: string, spec: FlagSpec, v: number): number {
  const fail = (what: string): never => {
    throw new UsageError(`handprop ${cmd}: --${name} must be ${what}, got ${v}`);
  };
  if (spec.above !== undefined && !(v > spec.above)) fail(`> ${spec.above}`);
  if (spec.min !== undefined && v < spec.min)
    fail(spec.min === 1 && spec.kind !== "number" ? "at least 1" : `≥ ${spec.min}`);
  if (spec.max !== undefined && v > spec.max) fail(`≤ ${spec.max}`);
  return v;
}

function convert(cmd: string, name: string, spec: FlagSpec, raw: string): number | string {
  const fail = (what: string): never => {
    throw new UsageError(`handprop ${cmd}: --${name} expects ${what}, got '${raw}'`);
  };
  switch (spec.kind) {
    case "string":
      if (spec.nonEmpty && raw.trim() === "")
        fail(spec.meta === "DIR" || spec.meta === "FILE" || spec.meta === "DIR|FILE" ? "a path" : "a value");
      if (spec.choices && !spec.choices.includes(raw)) fail(`one of ${spec.choices.join(", ")}`);
      return raw;
    case "number": {
      const v = raw.trim() === "" ? NaN : Number(raw);
      if (!Number.isFinite(v)) fail("a number");
      return checkRange(cmd, name, spec, v);
    }
    case "int":
    case "uint": {
      const v = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
      if (!Number.isSafeInteger(v)) fail(spec.kind === "uint" ? "a non-negative integer" : "an integer");
      if (spec.kind === "uint" && v < 0) fail("a non-negative integer");
      return checkRange(cmd, name, spec, v);
    }
    case "boolean":
      return raw;
  }
}

/** Parse argv for one command; throws UsageError with a one-line message on any bad flag. */
export function parseFlags(spec: CommandSpec, argv: string[]): { values: FlagValues; positionals: string[] } {
  const options: Record<string, { type: "string" | "boolean"; short?: string }> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    options[name] = { type: f.kind === "boolean" ? "boolean" : "string", ...(f.short ? { short: f.short } : {}) };
  }
  // "--lr -0.5": parseArgs would call a negative number an ambiguous option; bind it to its flag.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = argv[i].startsWith("--") ? argv[i].slice(2) : null;
    const takesValue = name !== null && Object.hasOwn(spec.flags, name) && spec.flags[name].kind !== "boolean";
    if (takesValue && i + 1 < argv.length && /^-\d|^-\.\d/.test(argv[i + 1])) {
      args.push(`${argv[i]}=${argv[i + 1]}`);
      i++;
    } else args.push(argv[i]);
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options, strict: true, allowPositionals: true });
  } catch (e) {
    const msg = (e as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(msg);
    if (unknown)
      throw new UsageError(`handprop ${spec.name}: unknown option '${unknown[1]}' (see handprop ${spec.name} --help)`);
    const missing = /Option '(?:-\w, )?(--[\w-]+)(?: <value>)?' argument missing/.exec(msg);
    if (missing) throw new UsageError(`handprop ${spec.name}: option '${missing[1]}' needs a value`);
    throw new UsageError(`handprop ${spec.name}: ${msg.split("\n")[0]}`);
  }
  if (!spec.positionals && parsed.positionals.length > 0) {
    throw new UsageError(
      `handprop ${spec.name}: unexpected argument '${parsed.positionals[0]}' (see handprop ${spec.name} --help)`,
    );
  }
  const values: FlagValues = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    const raw = parsed.values[name];
    if (raw === undefined) values[name] = f.default;
    else if (typeof raw === "boolean") values[name] = raw;
    else if (typeof raw === "string") {
      if (raw.startsWith("--") && f.kind !== "string")
        throw new UsageError(`handprop ${spec.name}: option '--${name}' needs a value`);
      values[name] = convert(spec.name, name, f, raw);
    }
  }
  return { values, positionals: parsed.positionals };
}

export function commandHelp(spec: CommandSpec): string {
  const lines = [`Usage: ${spec.usage ?? `handprop ${spec.name} [options]`}`, "", spec.summary, "", "Options:"];
  const rows = Object.entries(spec.flags).map(([name, f]) => {
    const meta =
      f.kind === "boolean"
        ? ""
        : ` <${f.meta ?? (f.choices ? f.choices.join("|") : f.kind === "string" ? "value" : "n")}>`;
    const left = `${f.short ? `-${f.short}, ` : ""}--${name}${meta}`;
    const def = f.default !== undefined && f.kind !== "boolean" ? ` (default: ${String(f.default)})` : "";
    return [left, f.help + def];
  });
  rows.push(["-h, --help", "show this help"]);
  const w = Math.max(...rows.map(([l]) => l.length));
  for (const [l, r] of rows) lines.push(`  ${l.padEnd(w)}  ${r}`);
  return lines.join("\n");
}
