// The documentation against the package, as a new user reads it: every name a code block imports from
// "handprop" or "handprop/node" is exported by that entry, and the README's CLI table shows every flag
// (and every choice of a flag) that `handprop <command> --help` lists. Names and flags come from the
// sources, so a renamed export or a new flag fails here until the documentation says so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { commands } from "../src/cli/main.ts";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const DOCS = [
  "README.md",
  "examples/README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

const ENTRIES = { "handprop": "src/index.ts", "handprop/node": "src/node/index.ts" };
const program = ts.createProgram(
  Object.values(ENTRIES).map((f) => join(ROOT, f)),
  { allowImportingTsExtensions: true, noEmit: true, types: [] },
);
const checker = program.getTypeChecker();

/** Each entry's exports (values and types), as a strict TypeScript consumer sees them. */
function entrySymbols(): Map<string, ts.Symbol[]> {
  const result = new Map<string, ts.Symbol[]>();
  for (const [name, file] of Object.entries(ENTRIES)) {
    const source = program.getSourceFile(join(ROOT, file));
    assert.ok(source, file);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    assert.ok(moduleSymbol, file);
    result.set(name, checker.getExportsOfModule(moduleSymbol));
  }
  return result;
}

/** Every name (value or type) each entry exports. */
function entryExports(): Map<string, Set<string>> {
  return new Map([...entrySymbols()].map(([entry, symbols]) => [entry, new Set(symbols.map((s) => s.name))]));
}

/** The named imports from handprop's entries in the code blocks of a markdown file. */
function documentedImports(markdown: string): { from: string; names: string[]; line: number }[] {
  const found: { from: string; names: string[]; line: number }[] = [];
  const pattern = /import\s*\{([^}]*)\}\s*from\s*"(handprop(?:\/node)?)"/g;
  for (const m of markdown.matchAll(pattern)) {
    const names = m[1]
      .split(",")
      .map((n) => n.trim().replace(/^type\s+/, ""))
      .filter((n) => n !== "")
      .map((n) => n.split(/\s+as\s+/)[0]);
    found.push({ from: m[2], names, line: markdown.slice(0, m.index).split("\n").length });
  }
  return found;
}

test("every name the documentation imports from handprop or handprop/node is exported there", () => {
  const exported = entryExports();
  let checked = 0;
  for (const doc of DOCS) {
    for (const { from, names, line } of documentedImports(read(doc))) {
      for (const name of names) {
        const other = from === "handprop" ? "handprop/node" : "handprop";
        const hint = exported.get(other)!.has(name) ? ` (it is in "${other}")` : "";
        assert.ok(exported.get(from)!.has(name), `${doc}:${line} imports ${name} from "${from}", not exported${hint}`);
        checked++;
      }
    }
  }
  assert.ok(checked > 40, `only ${checked} imported names found: did the pattern stop matching?`);
});

test("the README's CLI table shows every flag and every choice of each command's --help", () => {
  const rows = read("README.md")
    .split("\n")
    .filter((l) => l.startsWith("| `handprop "));
  for (const { spec } of commands) {
    const row = rows.find(
      (r) => r.startsWith(`| \`handprop ${spec.name} `) || r.startsWith(`| \`handprop ${spec.name}\``),
    );
    assert.ok(row, `the README's CLI table has no row for handprop ${spec.name}`);
    const usage = row.slice(0, row.indexOf("` |") + 1).replace(/\\\|/g, "|");
    for (const [flag, f] of Object.entries(spec.flags)) {
      assert.ok(usage.includes(`--${flag}`), `handprop ${spec.name}: --${flag} is missing from the README's table`);
      for (const choice of f.choices ?? []) {
        const shown = new RegExp(`--${flag} [^\\]\\[]*\\b${choice}\\b`);
        assert.match(usage, shown, `handprop ${spec.name} --${flag}: the choice ${choice} is missing from the README`);
      }
    }
  }
});

test("every class and function the entries export has JSDoc, which editors show on hover", () => {
  const undocumented: string[] = [];
  for (const [entry, symbols] of entrySymbols()) {
    for (const exported of symbols) {
      const s = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
      if (!(s.flags & (ts.SymbolFlags.Class | ts.SymbolFlags.Function))) continue;
      if (ts.displayPartsToString(s.getDocumentationComment(checker)).trim() === "") {
        undocumented.push(`${entry}: ${exported.name}`);
      }
    }
  }
  assert.deepEqual(undocumented, [], "exported without a /** */ comment");
});
