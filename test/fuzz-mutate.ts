// Mutations for the fuzzing suites (test/fuzz-*.test.ts): byte-level edits of a file and
// structural edits of its JSON, as fast-check arbitraries, plus the common property runner.
//
// Each suite runs for HANDPROP_FUZZ_SECONDS seconds per parser (default 2, so `npm test` stays
// fast); `npm run fuzz` runs them for a minute each. A failing case prints fast-check's seed and path,
// which replay it exactly.
import fc from "fast-check";
import assert from "node:assert/strict";

export const FUZZ_MS = 1000 * Number(process.env.HANDPROP_FUZZ_SECONDS ?? 2);
const seedFlag = process.env.HANDPROP_FUZZ_SEED;
/** The fast-check seed: fixed in `npm test`, random when HANDPROP_FUZZ_SECONDS is set (npm run fuzz). */
export const FUZZ_SEED =
  seedFlag !== undefined ? Number(seedFlag) : process.env.HANDPROP_FUZZ_SECONDS ? Date.now() | 0 : 20261128;
/** Any single input must be handled within this time. */
export const CASE_MS = 2000;

/** One byte-level edit. */
export type ByteEdit =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "set"; at: number; value: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "repeat"; at: number; length: number; times: number };

export const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({
    kind: fc.constant("set" as const),
    at: fc.nat(),
    value: fc.constantFrom(0x00, 0xff, 0x7f, 0x80, 0x01, 0x22, 0x5b, 0x7b, 0x1b),
  }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
  }),
  fc.record({
    kind: fc.constant("repeat" as const),
    at: fc.nat(),
    length: fc.integer({ min: 1, max: 64 }),
    times: fc.integer({ min: 1, max: 100 }),
  }),
);

/** The bytes after a list of edits (positions are taken modulo the current length). */
export function applyByteEdits(bytes: Uint8Array, edits: readonly ByteEdit[]): Uint8Array {
  let b = Uint8Array.from(bytes);
  for (const e of edits) {
    const at = b.length === 0 ? 0 : e.at % (b.length + (e.kind === "insert" || e.kind === "truncate" ? 1 : 0));
    switch (e.kind) {
      case "flip":
        if (b.length > 0) b[at % b.length] ^= 1 << e.bit;
        break;
      case "set":
        if (b.length > 0) b[at % b.length] = e.value;
        break;
      case "truncate":
        b = b.slice(0, at);
        break;
      case "insert":
        b = Uint8Array.from([...b.subarray(0, at), ...e.bytes, ...b.subarray(at)]);
        break;
      case "repeat": {
        const piece = b.subarray(at, at + e.length);
        const out = new Uint8Array(b.length + piece.length * e.times);
        out.set(b.subarray(0, at + piece.length));
        for (let k = 1; k <= e.times; k++) out.set(piece, at + piece.length * k);
        out.set(b.subarray(at + piece.length), at + piece.length * (e.times + 1));
        b = out;
        break;
      }
    }
  }
  return b;
}

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** Values a hostile or broken file might hold where a number, string or object is expected. */
export const hostileValue: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.constantFrom<JsonValue>(
    -1,
    0,
    1,
    0.5,
    2 ** 31,
    2 ** 32,
    2 ** 53,
    -(2 ** 53),
    1e308,
    -1e308,
    300000,
    99999,
    "",
    "x",
    "\u001b[2J\u0000",
    null,
    true,
    [],
    {},
    [0],
    [-1, 2],
    { type: "Dense" },
  ),
  fc.integer(),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<JsonValue>,
);

/** One structural edit of a JSON document: replace, delete or duplicate the value at a path. */
export interface JsonEdit {
  /** Index into the list of paths (modulo its length). */
  path: number;
  op: "replace" | "delete" | "wrap";
  value: JsonValue;
}

export const jsonEdit: fc.Arbitrary<JsonEdit> = fc.record({
  path: fc.nat(),
  op: fc.constantFrom("replace" as const, "replace" as const, "delete" as const, "wrap" as const),
  value: hostileValue,
});

/** Every path in a JSON value (arrays longer than 8 contribute their first 8 and last element). */
function paths(v: JsonValue, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(prefix);
  if (Array.isArray(v)) {
    const idx = v.length > 8 ? [...Array(8).keys(), v.length - 1] : [...v.keys()];
    for (const i of idx) paths(v[i], [...prefix, i], out);
  } else if (typeof v === "object" && v !== null) {
    for (const k of Object.keys(v)) paths(v[k], [...prefix, k], out);
  }
  return out;
}

/** A deep copy of doc with the edits applied. */
export function applyJsonEdits<T>(doc: T, edits: readonly JsonEdit[]): T {
  let root = structuredClone(doc) as JsonValue;
  for (const e of edits) {
    const all = paths(root);
    const p = all[e.path % all.length];
    if (p.length === 0) {
      root = e.op === "wrap" ? [root] : structuredClone(e.value);
      continue;
    }
    let parent = root as Record<string | number, JsonValue>;
    for (const k of p.slice(0, -1)) parent = parent[k] as Record<string | number, JsonValue>;
    const key = p[p.length - 1];
    // A copy: the same generated value inserted twice would make a cycle, which no JSON file can hold.
    if (e.op === "replace") parent[key] = structuredClone(e.value);
    else if (e.op === "wrap") parent[key] = [parent[key]];
    else if (Array.isArray(parent)) parent.splice(key as number, 1);
    else Reflect.deleteProperty(parent, key);
  }
  return root as T;
}

/**
 * Run `check` on generated inputs for FUZZ_MS: each must finish within CASE_MS (a hang shows up as a
 * failure naming the input), and the resident memory may not grow by more than `maxGrowth` bytes.
 * The event loop turns every 50 inputs: zlib frees its native buffers from there, as it would
 * between the files of a real run. Returns the number of inputs tried.
 */
export async function fuzz<T>(arb: fc.Arbitrary<T>, check: (input: T) => void, maxGrowth = 400e6): Promise<number> {
  const rss0 = process.memoryUsage().rss;
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(arb, async (input) => {
      if (++runs % 50 === 0) await new Promise((r) => setImmediate(r));
      const t0 = performance.now();
      check(input);
      const ms = performance.now() - t0;
      assert.ok(ms < CASE_MS, `took ${ms.toFixed(0)} ms (limit ${CASE_MS} ms)`);
    }),
    {
      numRuns: 1_000_000,
      interruptAfterTimeLimit: FUZZ_MS,
      markInterruptAsFailure: false,
      // `npm test` explores a fixed sequence (the same inputs on every run, as many as fit in the time);
      // `npm run fuzz` draws a new seed each time. HANDPROP_FUZZ_SEED (and _PATH) replay a reported failure.
      seed: FUZZ_SEED,
      ...(process.env.HANDPROP_FUZZ_PATH ? { path: process.env.HANDPROP_FUZZ_PATH } : {}),
    },
  );
  await new Promise((r) => setTimeout(r, 20));
  const growth = process.memoryUsage().rss - rss0;
  assert.ok(growth < maxGrowth, `resident memory grew by ${(growth / 1e6).toFixed(0)} MB in ${runs} inputs`);
  return runs;
}

/** The outcome of a parse: its value, or the error it threw. */
export function outcome<T>(parse: () => T): { ok: true; value: T } | { ok: false; error: unknown } {
  try {
    return { ok: true, value: parse() };
  } catch (error) {
    return { ok: false, error };
  }
}

/** Assert that an error is of the expected typed class, names the file, and carries no raw control characters. */
export function assertTypedError(
  error: unknown,
  type: abstract new (...args: never[]) => Error,
  file: string | RegExp,
): void {
  if (!(error instanceof type))
    throw new assert.AssertionError({
      message: `expected a ${type.name}, got ${String(error)}${error instanceof Error ? `\n${error.stack ?? ""}` : ""}`,
    });
  const named = typeof file === "string" ? error.message.includes(file) : file.test(error.message);
  assert.ok(named, `the error does not name ${String(file)}: ${error.message}`);
  assert.ok(
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(error.message),
    `raw control characters in: ${JSON.stringify(error.message)}`,
  );
}
