// RandomState against NumPy's legacy np.random.RandomState, bit for bit, and the logs
// behind its normals. Reference data: test/fixtures/random.json, written by
// test/fixtures/gen_random.py (NumPy + the platform libm; see its meta block).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import fc from "fast-check";
import { RandomState, type RandomStateInput, type Size } from "../src/nd/random.ts";
import { fma, logGlibc } from "../src/nd/log.ts";
import { logCR, logExact } from "../research/log-cr.ts";
import { NDArray } from "../src/nd/ndarray.ts";

// ---------------------------------------------------------------------------------------
// Fixture.

type LegacyState = [string, number[], number, number, number];
type Arg = number | number[] | null;

interface Fixture {
  meta: { numpy: string; machine: string; system: string; libc: string };
  keys: { seed: number | number[]; state: LegacyState }[];
  streams: { seed: number; raw: number[]; rand: number[]; randn: number[] }[];
  array_seeds: { seed: number[]; rand: number[]; randn: number[] }[];
  squeezed_seed: { seed: number; rand: number[] };
  article: { seed: number; a: number[]; b: number[] };
  programs: {
    seed: number;
    steps: { op: string; args: Arg[]; shape: number[] | null; values: number[] }[];
    state: LegacyState;
  }[];
  randint: { seed: number; low: number; high: number; values: number[]; after: number }[];
  randint_scalar: { seed: number; calls: [number, number | null][]; values: number[] };
  permutation: { seed: number; n: number; values: number[]; after: number }[];
  shuffle_list: { seed: number; input: number[]; values: number[]; after: number };
  shuffle_rows: { seed: number; shape: number[]; values: number[]; after: number };
  permutation_rows: { seed: number; shape: number[]; values: number[]; after: number };
  permutation_list: { seed: number; input: number[]; values: number[] };
  choice: {
    seed: number;
    a: number | number[];
    size: number[] | null;
    replace: boolean;
    p: number[] | null;
    values: number[];
    after: number;
  }[];
  states: { seed: number; draws: string; state: LegacyState }[];
  set_state: { state: LegacyState; randn: number[]; rand: number[] };
  hashes: Record<string, string>;
  log: {
    x: number[];
    glibc: number[];
    exact: number[];
    streams: {
      name: string;
      n: number;
      glibc_sha256: string;
      exact_sha256: string;
      glibc_not_exact: number;
      numpy_log_not_exact: number;
      glibc_not_exact_examples: [number, number, number][];
    }[];
  };
}

const FX = JSON.parse(readFileSync(new URL("./fixtures/random.json", import.meta.url), "utf8")) as Fixture;
const PLATFORM = `NumPy ${FX.meta.numpy} on ${FX.meta.system} ${FX.meta.machine} ${FX.meta.libc}`;

// ---------------------------------------------------------------------------------------
// Helpers.

const F = new Float64Array(1);
const I = new BigInt64Array(F.buffer);

/** Distance in units in the last place between two finite doubles. */
function ulps(a: number, b: number): number {
  const ord = (x: number): bigint => {
    F[0] = x;
    const v = I[0];
    return v < 0n ? -(v & 0x7fffffffffffffffn) : v;
  };
  const d = ord(a) - ord(b);
  return Number(d < 0n ? -d : d);
}

/** Assert element-wise identity (Object.is), reporting the mismatch count and max ulp. */
function assertSame(actual: ArrayLike<number>, expected: readonly number[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  let bad = 0;
  let maxUlp = 0;
  let first = -1;
  for (let i = 0; i < expected.length; i++) {
    if (!Object.is(actual[i], expected[i])) {
      if (first < 0) first = i;
      bad++;
      maxUlp = Math.max(maxUlp, ulps(actual[i], expected[i]));
    }
  }
  assert.equal(
    bad,
    0,
    `${label}: ${bad} of ${expected.length} differ (max ${maxUlp} ulp); first at ${first}: ` +
      (first >= 0 ? `${actual[first]} vs ${expected[first]}` : ""),
  );
}

function values(r: number | number[] | NDArray): number[] {
  if (typeof r === "number") return [r];
  if (r instanceof NDArray) return Array.from(r.data);
  return r;
}

function sha256(a: Float64Array): string {
  return createHash("sha256")
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest("hex");
}

function toState(s: LegacyState): RandomStateInput {
  return [s[0], s[1], s[2], s[3], s[4]];
}

function assertState(rs: RandomState, expected: LegacyState, label: string): void {
  const st = rs.getState();
  assert.equal(st.key.length, 624, `${label}: key length`);
  assertSame(st.key, expected[1], `${label}: key`);
  assert.equal(st.pos, expected[2], `${label}: pos`);
  assert.equal(st.hasGauss, expected[3] === 1, `${label}: hasGauss`);
  assert.ok(
    Object.is(st.cachedGaussian, expected[4]),
    `${label}: cachedGaussian ${st.cachedGaussian} vs ${expected[4]}`,
  );
}

const sizeOf = (a: Arg): Size | undefined => (a === null ? undefined : a);
const num = (a: Arg): number => {
  assert.equal(typeof a, "number");
  return a as number;
};

// ---------------------------------------------------------------------------------------

describe("RandomState seeding", () => {
  test("init_genrand / init_by_array states equal NumPy's", () => {
    for (const k of FX.keys) {
      assertState(new RandomState(k.seed), k.state, `seed ${JSON.stringify(k.seed)}`);
    }
  });

  test("array seeds (init_by_array, keys longer than the state)", () => {
    for (const s of FX.array_seeds) {
      const rs = new RandomState(s.seed);
      assertSame(rs.rand(50).data, s.rand, `seed [${s.seed.length} words] rand`);
      assertSame(rs.randn(11).data, s.randn, `seed [${s.seed.length} words] randn`);
    }
  });

  test("a length-1 Uint32Array is squeezed to a scalar seed, a length-1 list is not (as NumPy)", () => {
    const { seed, rand } = FX.squeezed_seed;
    assertSame(new RandomState(Uint32Array.of(seed)).rand(5).data, rand, "Uint32Array.of(5)");
    assertSame(new RandomState(seed).rand(5).data, rand, "5");
    const list = FX.array_seeds.find((s) => s.seed.length === 1 && s.seed[0] === seed);
    assert.ok(list !== undefined);
    assertSame(new RandomState([seed]).rand(50).data, list.rand, "[5]");
    assert.notEqual(list.rand[0], rand[0]);
    assertSame(
      new RandomState(Uint32Array.from([1, 2, 3])).rand(50).data,
      FX.array_seeds[2].rand,
      "Uint32Array [1,2,3]",
    );
  });

  test("seed() reseeds and drops the cached Gaussian", () => {
    const rs = new RandomState(1);
    rs.randn();
    assert.equal(rs.getState().hasGauss, true);
    rs.seed(598765);
    assertState(rs, FX.keys[2].state, "reseeded");
    assert.equal(rs.getState().hasGauss, false);
  });

  test("seed errors follow NumPy", () => {
    assert.throws(() => new RandomState(-1), {
      name: "RangeError",
      message: /Seed must be between 0 and 2\*\*32 - 1.*-1/,
    });
    assert.throws(() => new RandomState(2 ** 32), {
      name: "RangeError",
      message: /Seed must be between 0 and 2\*\*32 - 1.*4294967296/,
    });
    assert.throws(() => new RandomState(1.5), { name: "TypeError", message: /1\.5/ });
    assert.throws(() => new RandomState(NaN), { name: "TypeError", message: /NaN/ });
    assert.throws(() => new RandomState(Infinity), { name: "TypeError", message: /Infinity/ });
    assert.throws(() => new RandomState([]), { name: "RangeError", message: /Seed must be non-empty/ });
    assert.throws(() => new RandomState(new Uint32Array(0)), { name: "RangeError", message: /Seed must be non-empty/ });
    assert.throws(() => new RandomState([1, 2.5]), { name: "TypeError", message: /2\.5/ });
    assert.throws(() => new RandomState([1, -1]), { name: "RangeError", message: /between 0 and 2\*\*32 - 1/ });
    new RandomState(0);
    new RandomState(2 ** 32 - 1);
  });

  test("without a seed the state comes from crypto randomness", () => {
    const a = new RandomState();
    const b = new RandomState();
    const sa = a.getState();
    assert.equal(sa.key[0], 0x80000000);
    assert.equal(sa.pos, 624);
    assert.notDeepEqual(sa.key, b.getState().key);
    const x = a.rand();
    assert.ok(x >= 0 && x < 1);
  });
});

describe("RandomState streams", () => {
  test("raw words, doubles and normals for many seeds", () => {
    for (const s of FX.streams) {
      let rs = new RandomState(s.seed);
      const raw = s.raw.map(() => rs.nextUint32());
      assertSame(raw, s.raw, `seed ${s.seed} raw`);
      rs = new RandomState(s.seed);
      assertSame(rs.rand(700).data, s.rand, `seed ${s.seed} rand`);
      rs = new RandomState(s.seed);
      assertSame(rs.randn(401).data, s.randn, `seed ${s.seed} randn`);
      rs = new RandomState(s.seed);
      assertSame(
        s.rand.map(() => rs.nextDouble()),
        s.rand,
        `seed ${s.seed} nextDouble`,
      );
    }
  });

  test("the article's check: seed(598765); randn(2,2)*4; randn(4,1)*4", () => {
    const rs = new RandomState(FX.article.seed);
    const a = rs.randn(2, 2);
    const b = rs.randn(4, 1);
    assert.deepEqual(a.shape, [2, 2]);
    assert.deepEqual(b.shape, [4, 1]);
    assertSame(
      Array.from(a.data, (v) => v * 4),
      FX.article.a,
      "randn(2,2)*4",
    );
    assertSame(
      Array.from(b.data, (v) => v * 4),
      FX.article.b,
      "randn(4,1)*4",
    );
  });

  test("mixed call sequences (cached Gaussian across calls, interleaved uniforms) and final state", () => {
    for (const prog of FX.programs) {
      const rs = new RandomState(prog.seed);
      for (const [i, st] of prog.steps.entries()) {
        const a = st.args;
        let r: number | number[] | NDArray;
        switch (st.op) {
          case "randn":
            r = rs.randn(...(a as number[]));
            break;
          case "rand":
            r = rs.rand(...(a as number[]));
            break;
          case "normal":
            r = rs.normal(num(a[0]), num(a[1]), sizeOf(a[2]));
            break;
          case "uniform":
            r = rs.uniform(num(a[0]), num(a[1]), sizeOf(a[2]));
            break;
          case "randint":
            r = rs.randint(num(a[0]), a[1] === null ? undefined : num(a[1]), sizeOf(a[2]));
            break;
          case "standard_normal":
            r = rs.standardNormal(sizeOf(a[0]));
            break;
          case "random_sample":
            r = rs.randomSample(sizeOf(a[0]));
            break;
          case "permutation":
            r = rs.permutation(num(a[0]));
            break;
          default:
            throw new Error(`unknown op ${st.op}`);
        }
        const label = `seed ${prog.seed} step ${i} ${st.op}(${JSON.stringify(a)})`;
        if (st.shape === null) assert.equal(typeof r, "number", `${label}: scalar`);
        else if (r instanceof NDArray) assert.deepEqual(r.shape, st.shape, `${label}: shape`);
        else assert.deepEqual([values(r).length], st.shape, `${label}: shape`);
        assertSame(values(r), st.values, label);
      }
      assertState(rs, prog.state, `seed ${prog.seed} final state`);
    }
  });

  test("long streams match by SHA-256 (1e6 uniforms, 1e6 normals, ...)", (t) => {
    const h = FX.hashes;
    const check = (name: string, data: Float64Array): void => {
      assert.equal(sha256(data), h[name], `${name} (${PLATFORM})`);
    };
    check("rand_seed0_1e6", new RandomState(0).rand(1_000_000).data as Float64Array);
    check("randn_seed0_1e6", new RandomState(0).randn(1_000_000).data as Float64Array);
    check("randn_seed598765_2e5", new RandomState(598765).randn(200_000).data as Float64Array);
    check("normal_seed9_1e5", new RandomState(9).normal(3, 0.25, 100_000).data as Float64Array);
    check("randint_seed5_2e5", new RandomState(5).randint(-1000, 2 ** 45, 200_000).data as Float64Array);
    check("permutation_seed8_1e5", Float64Array.from(new RandomState(8).permutation(100_000)));
    t.diagnostic("1e6 normals bit-identical to NumPy (SHA-256 of the float64 bytes)");
  });

  test("scalar vs shaped results", () => {
    const rs = new RandomState(3);
    assert.equal(typeof rs.rand(), "number");
    assert.equal(typeof rs.randn(), "number");
    assert.equal(typeof rs.uniform(), "number");
    assert.equal(typeof rs.normal(), "number");
    assert.equal(typeof rs.randomSample(), "number");
    assert.equal(typeof rs.random(), "number");
    assert.equal(typeof rs.standardNormal(), "number");
    assert.equal(typeof rs.randint(5), "number");
    assert.deepEqual(rs.rand(0).shape, [0]);
    assert.deepEqual(rs.randomSample([]).shape, []);
    assert.equal(rs.randomSample([]).size, 1);
    assert.deepEqual(rs.uniform(0, 1, [2, 3]).shape, [2, 3]);
    assert.deepEqual(rs.randint(0, 5, 4).shape, [4]);
    assert.throws(() => rs.rand(-1), { name: "RangeError", message: /negative dimensions/ });
    assert.throws(() => rs.randomSample(1.5), { name: "TypeError" });
    // Same draws with and without a size.
    const a = new RandomState(8);
    const b = new RandomState(8);
    assertSame(
      [a.uniform(-2, 3), a.normal(1, 2), a.randint(-7, 1000)],
      [b.uniform(-2, 3, 1).data[0], b.normal(1, 2, [1]).data[0], b.randint(-7, 1000, [1, 1]).data[0]],
      "scalar vs size 1",
    );
  });

  test("distribution argument errors", () => {
    const rs = new RandomState(0);
    assert.throws(() => rs.normal(0, -1), { name: "RangeError", message: /scale < 0/ });
    assert.throws(() => rs.normal(0, -0), { name: "RangeError", message: /scale < 0/ });
    assert.throws(() => rs.uniform(-Infinity, 0), { name: "RangeError", message: /Range exceeds valid bounds/ });
    assert.throws(() => rs.uniform(-1.7976931348623157e308, 1.7976931348623157e308), { name: "RangeError" });
    // Nothing was drawn by the failed calls.
    assert.equal(rs.rand(), new RandomState(0).rand());
  });
});

describe("RandomState integers", () => {
  test("randint over many ranges (32-bit and 64-bit masked rejection, negative low)", () => {
    for (const c of FX.randint) {
      const rs = new RandomState(c.seed);
      const r = rs.randint(c.low, c.high, 40);
      assertSame(r.data, c.values, `randint(${c.low}, ${c.high})`);
      assert.equal(rs.rand(), c.after, `randint(${c.low}, ${c.high}): next draw`);
    }
  });

  test("scalar randint calls, including high omitted", () => {
    const { seed, calls, values: expected } = FX.randint_scalar;
    const rs = new RandomState(seed);
    const got = calls.map(([lo, hi]) => rs.randint(lo, hi ?? undefined));
    assertSame(got, expected, "randint scalars");
  });

  test("randint errors follow NumPy", () => {
    const rs = new RandomState(0);
    assert.throws(() => rs.randint(0), { name: "RangeError", message: /high <= 0/ });
    assert.throws(() => rs.randint(-3), { name: "RangeError", message: /high <= 0/ });
    assert.throws(() => rs.randint(5, 3), { name: "RangeError", message: /low >= high/ });
    assert.throws(() => rs.randint(3, 3), { name: "RangeError", message: /low >= high/ });
    assert.throws(() => rs.randint(1.5, 3), { name: "TypeError", message: /low/ });
    assert.throws(() => rs.randint(0, NaN), { name: "TypeError", message: /high/ });
    assert.throws(() => rs.randint(0, 2 ** 60), { name: "RangeError" });
    assert.throws(() => rs.randint(-(2 ** 53) + 1, 2 ** 53 - 1), { name: "RangeError", message: /exceeds 2\^53/ });
    // Empty size: no bounds check and no draw, as NumPy.
    assert.deepEqual(rs.randint(5, 3, [0, 2]).shape, [0, 2]);
    assert.equal(rs.rand(), new RandomState(0).rand());
  });

  test("randint values stay in range (property)", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        fc.integer({ min: 1, max: 2 ** 45 }),
        (seed, low, span) => {
          const rs = new RandomState(seed);
          const v = rs.randint(low, low + span, 20).data;
          return v.every((x) => Number.isInteger(x) && x >= low && x < low + span);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("RandomState permutations", () => {
  test("permutation(n)", () => {
    for (const c of FX.permutation) {
      const rs = new RandomState(c.seed);
      const p = rs.permutation(c.n);
      assert.ok(Array.isArray(p));
      assertSame(p, c.values, `permutation(${c.n})`);
      assert.equal(rs.rand(), c.after, `permutation(${c.n}): next draw`);
    }
    assert.deepEqual(new RandomState(1).permutation(-3), []);
  });

  test("permutation of a list returns a shuffled copy", () => {
    const c = FX.permutation_list;
    const input = c.input.slice();
    assertSame(new RandomState(c.seed).permutation(input), c.values, "permutation(list)");
    assert.deepEqual(input, c.input);
  });

  test("shuffle: list, typed array, NDArray rows", () => {
    const c = FX.shuffle_list;
    let rs = new RandomState(c.seed);
    const list = c.input.slice();
    rs.shuffle(list);
    assertSame(list, c.values, "shuffle(list)");
    assert.equal(rs.rand(), c.after);
    rs = new RandomState(c.seed);
    const typed = Float64Array.from(c.input);
    rs.shuffle(typed);
    assertSame(typed, c.values, "shuffle(Float64Array)");

    const r = FX.shuffle_rows;
    rs = new RandomState(r.seed);
    const arr = new NDArray(
      Float64Array.from({ length: 24 }, (_, i) => i),
      r.shape,
    );
    rs.shuffle(arr);
    assertSame(arr.data, r.values, "shuffle(6x4 rows)");
    assert.equal(rs.rand(), r.after);

    const pr = FX.permutation_rows;
    rs = new RandomState(pr.seed);
    const src = new NDArray(
      Float64Array.from({ length: 30 }, (_, i) => i),
      pr.shape,
    );
    const out = rs.permutation(src);
    assert.deepEqual(out.shape, pr.shape);
    assertSame(out.data, pr.values, "permutation(5x3x2)");
    assert.equal(src.data[29], 29, "input untouched");
    assert.equal(rs.rand(), pr.after);

    // 1-d NDArray shuffles like a list; empty arrays draw nothing; 0-d throws.
    rs = new RandomState(c.seed);
    const v = new NDArray(Float64Array.from(c.input), [c.input.length]);
    rs.shuffle(v);
    assertSame(v.data, c.values, "shuffle(1-d NDArray)");
    rs = new RandomState(5);
    rs.shuffle(new NDArray(new Float64Array(0), [3, 0]));
    assert.equal(rs.rand(), new RandomState(5).rand());
    assert.throws(
      () => {
        new RandomState(5).shuffle(new NDArray(Float64Array.of(1), []));
      },
      { name: "TypeError" },
    );
  });
});

describe("RandomState.choice", () => {
  test("legacy choice: with/without replacement, with/without p, arrays and integers", () => {
    for (const c of FX.choice) {
      const rs = new RandomState(c.seed);
      const r = rs.choice(c.a, c.size ?? undefined, c.replace, c.p ?? undefined);
      const label = `choice(${JSON.stringify(c.a)}, ${JSON.stringify(c.size)}, ${c.replace}, ${JSON.stringify(c.p)})`;
      if (c.size === null) assert.equal(typeof r, "number", label);
      else assert.deepEqual((r as NDArray).shape, c.size, label);
      assertSame(values(r), c.values, label);
      assert.equal(rs.rand(), c.after, `${label}: next draw`);
    }
  });

  test("choice errors", () => {
    const rs = new RandomState(0);
    assert.throws(() => rs.choice(0, 3), { name: "RangeError", message: /greater than 0/ });
    assert.throws(() => rs.choice([], 3), { name: "RangeError", message: /cannot be empty/ });
    assert.throws(() => rs.choice(3, 5, false), { name: "RangeError", message: /larger sample/ });
    assert.throws(() => rs.choice(3, 2, true, [0.5, 0.5]), { name: "RangeError", message: /same size/ });
    assert.throws(() => rs.choice(2, 2, true, [0.7, 0.7]), { name: "RangeError", message: /sum to 1/ });
    assert.throws(() => rs.choice(2, 2, true, [1.5, -0.5]), { name: "RangeError", message: /non-negative/ });
    assert.throws(() => rs.choice(3, 2, false, [1, 0, 0]), { name: "RangeError", message: /Fewer non-zero/ });
  });
});

describe("RandomState state", () => {
  test("getState after draws equals NumPy's get_state()", () => {
    for (const s of FX.states) {
      const rs = new RandomState(s.seed);
      if (s.draws === "randn(3)") rs.randn(3);
      else if (s.draws === "rand(1000)") rs.rand(1000);
      else throw new Error(s.draws);
      assertState(rs, s.state, `seed ${s.seed} after ${s.draws}`);
    }
  });

  test("setState with a state taken from Python continues NumPy's stream", () => {
    const c = FX.set_state;
    assert.equal(c.state[3], 1, "fixture state holds a cached Gaussian");
    const rs = new RandomState(0);
    rs.setState(toState(c.state));
    assertSame(rs.randn(7).data, c.randn, "randn after set_state");
    assertSame(rs.rand(3).data, c.rand, "rand after set_state");
    // Object form, and the 3-tuple form (no cached Gaussian).
    const rs2 = new RandomState(1);
    rs2.setState({ key: c.state[1], pos: c.state[2], hasGauss: true, cachedGaussian: c.state[4] });
    assertSame(rs2.randn(7).data, c.randn, "object form");
    const rs3 = new RandomState(1);
    rs3.setState(["MT19937", c.state[1], c.state[2]]);
    assert.equal(rs3.getState().hasGauss, false);
  });

  test("getState returns a copy; round trip", () => {
    const rs = new RandomState(77);
    rs.randn(3);
    const st = rs.getState();
    const expected = rs.randn(10).data;
    st.key[0] ^= 1; // mutating the snapshot must not touch the generator...
    st.key[0] ^= 1;
    const other = new RandomState(5);
    other.setState(st);
    st.key.fill(0); // ...nor the generator that received it
    assertSame(other.randn(10).data, Array.from(expected), "round trip");
  });

  test("setState validation", () => {
    const rs = new RandomState(0);
    const good = rs.getState();
    const before = rs.getState();
    assert.throws(
      () => {
        rs.setState({ key: new Uint32Array(623), pos: 0 });
      },
      { name: "RangeError", message: /624/ },
    );
    assert.throws(
      () => {
        rs.setState({ key: good.key, pos: 625 });
      },
      { name: "RangeError", message: /pos/ },
    );
    assert.throws(
      () => {
        rs.setState({ key: good.key, pos: 1.5 });
      },
      { name: "RangeError", message: /pos/ },
    );
    assert.throws(
      () => {
        rs.setState({ key: Array.from(good.key, (v, i) => (i === 3 ? -1 : v)), pos: 0 });
      },
      {
        name: "RangeError",
        message: /key\[3\]/,
      },
    );
    assert.throws(
      () => {
        rs.setState(["PCG64", good.key, 0]);
      },
      { name: "RangeError", message: /MT19937/ },
    );
    assert.deepEqual(rs.getState(), before, "failed setState changed nothing");
  });
});

describe("logs", () => {
  test("logGlibc equals glibc's log and logCR the exact rounding, on explicit inputs", (t) => {
    const { x, glibc, exact } = FX.log;
    assertSame(x.map(logGlibc), glibc, "logGlibc vs glibc log");
    assertSame(x.map(logCR), exact, "logCR vs exact");
    const sub = x.filter((_, i) => i % 7 === 0);
    assertSame(
      sub.map(logExact),
      exact.filter((_, i) => i % 7 === 0),
      "logExact vs exact",
    );
    let mathLog = 0;
    for (let i = 0; i < x.length; i++) if (Math.log(x[i]) !== glibc[i]) mathLog++;
    t.diagnostic(
      `${x.length} explicit inputs (all powers of two, subnormals, edges); Math.log differs from glibc on ${mathLog}`,
    );
  });

  test("log streams (600k inputs) by SHA-256, and where glibc misrounds", (t) => {
    for (const s of FX.log.streams) {
      const xs = new Float64Array(s.n);
      if (s.name === "uniform_seed2024") {
        const rs = new RandomState(2024);
        for (let i = 0; i < s.n; i++) xs[i] = rs.nextDouble();
      } else if (s.name === "near1_seed2025") {
        const rs = new RandomState(2025);
        for (let i = 0; i < s.n; i++) xs[i] = 1 + (rs.nextDouble() - 0.5) * 0.15;
      } else if (s.name === "bits_seed2026") {
        const rs = new RandomState(2026);
        const u = new Uint32Array(xs.buffer);
        for (let i = 0; i < s.n; i++) {
          u[2 * i + 1] = rs.nextUint32() % 0x7ff00000;
          u[2 * i] = rs.nextUint32();
        }
      } else {
        throw new Error(s.name);
      }
      const g = xs.map(logGlibc);
      const c = xs.map(logCR);
      assert.equal(sha256(g), s.glibc_sha256, `${s.name}: logGlibc vs glibc (${PLATFORM})`);
      assert.equal(sha256(c), s.exact_sha256, `${s.name}: logCR vs exact`);
      let mathLog = 0;
      for (let i = 0; i < xs.length; i++) if (Math.log(xs[i]) !== g[i]) mathLog++;
      for (const [x, gl, ex] of s.glibc_not_exact_examples) {
        assert.equal(logGlibc(x), gl);
        assert.equal(logCR(x), ex);
        assert.equal(ulps(gl, ex), 1);
      }
      t.diagnostic(
        `${s.name}: ${s.n} inputs bit-identical; glibc misrounds ${s.glibc_not_exact}, ` +
          `np.log (SIMD) misrounds ${s.numpy_log_not_exact}, Math.log differs from glibc on ${mathLog}`,
      );
    }
  });

  test("special values", () => {
    for (const f of [logCR, logGlibc, logExact]) {
      assert.equal(f(1), 0);
      assert.ok(Object.is(f(1), 0));
      assert.equal(f(0), -Infinity);
      assert.equal(f(-0), -Infinity);
      assert.ok(Number.isNaN(f(-1)));
      assert.ok(Number.isNaN(f(NaN)));
      assert.ok(Number.isNaN(f(-Infinity)));
      assert.equal(f(Infinity), Infinity);
      assert.equal(f(Math.E), 1);
      assert.equal(f(2), Math.LN2);
      assert.equal(f(5e-324), -744.4400719213812);
    }
  });

  test("logCR agrees with the BigInt reference (property)", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 5e-324, max: 1.7976931348623157e308, noNaN: true }),
        (x) => logCR(x) === logExact(x),
      ),
      { numRuns: 2000 },
    );
  });

  test("fma is exactly rounded (property, exact BigInt reference)", () => {
    // Doubles m·2^e with |m| < 2^53 and moderate e, so the exact value fits a BigInt scale.
    const dbl = fc
      .tuple(fc.integer({ min: -(2 ** 53) + 1, max: 2 ** 53 - 1 }), fc.integer({ min: -120, max: 60 }))
      .map(([m, e]) => m * 2 ** e);
    const exactFma = (a: number, b: number, c: number): number => {
      // Scale everything to integers by 2^400 (exact: all inputs are multiples of 2^-172).
      const S = 400;
      const toBig = (v: number, extra: number): bigint => {
        let e = 0;
        let m = v;
        while (!Number.isInteger(m)) {
          m *= 2;
          e++;
        }
        return BigInt(m) << BigInt(extra - e);
      };
      const prod = toBig(a, S / 2) * toBig(b, S / 2);
      const sum = prod + toBig(c, S);
      return Number(sum) / 2 ** S;
    };
    fc.assert(
      fc.property(dbl, dbl, dbl, (a, b, c) => {
        const r = fma(a, b, c);
        const e = exactFma(a, b, c);
        return Object.is(r, e) || (r === 0 && e === 0);
      }),
      { numRuns: 3000 },
    );
    // Near-total cancellation, where a naive a*b + c loses everything.
    const a = 1 + 2 ** -30;
    const b = 1 - 2 ** -30;
    assert.equal(fma(a, b, -1), -(2 ** -60));
    assert.equal(a * b - 1, 0);
  });
});
