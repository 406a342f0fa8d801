// Printing numbers the way Python and NumPy do, so a report can be compared with NumPy's line by line.
// pyRepr mirrors Python's float repr (shortest round-trip digits, exponent outside [1e-4, 1e16));
// formatArray mirrors np.array2string with default print options (precision 8, floatmode 'maxprec',
// suppress=False, linewidth 75).

import type { NDArray } from "./ndarray.ts";

/** Python's repr(float): the shortest digits that round-trip, in Python's notation. */
export function pyRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const ax = Math.abs(x);
  if (ax >= 1e-4 && ax < 1e16) {
    const s = positional(x);
    return s.includes(".") ? s : `${s}.0`;
  }
  const [m, e] = x.toExponential().split("e");
  const exp = Number(e);
  return `${m}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(2, "0")}`;
}

/** Shortest round-trip digits in positional notation (JS switches to exponents below 1e-6). */
function positional(x: number): string {
  const s = String(x);
  if (!s.includes("e")) return s;
  const [mant, e] = s.split("e");
  const exp = Number(e);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  const pointAt =
    (mant.replace("-", "").indexOf(".") === -1 ? digits.length : mant.replace("-", "").indexOf(".")) + exp;
  let out: string;
  if (pointAt <= 0) out = `0.${"0".repeat(-pointAt)}${digits}`;
  else if (pointAt >= digits.length) out = digits + "0".repeat(pointAt - digits.length);
  else out = `${digits.slice(0, pointAt)}.${digits.slice(pointAt)}`;
  return neg ? `-${out}` : out;
}

/** dragon4_positional(x, precision, unique=True, trim='.'): shortest digits, at most `precision` after the point. */
function positionalMaxPrec(x: number, precision: number): string {
  let s = positional(x);
  const dot = s.indexOf(".");
  if (dot !== -1 && s.length - dot - 1 > precision) {
    s = x.toFixed(precision).replace(/0+$/, "");
  }
  if (!s.includes(".")) s += ".";
  return s;
}

/** dragon4_scientific(x, precision, unique=True, trim='.') split into mantissa and exponent. */
function scientificMaxPrec(x: number, precision: number): [string, number] {
  let [m, e] = x.toExponential().split("e");
  const dot = m.indexOf(".");
  if (dot !== -1 && m.length - dot - 1 > precision) {
    [m, e] = x.toExponential(precision).split("e");
    m = m.replace(/0+$/, "");
  }
  if (!m.includes(".")) m += ".";
  return [m, Number(e)];
}

/** Formats numbers as one NumPy column format, chosen from all finite values together. */
function makeFormatter(values: ArrayLike<number>, precision = 8): (x: number) => string {
  const finite: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i])) finite.push(values[i]);
  const abs = finite.map(Math.abs).filter((v) => v !== 0);
  const maxVal = abs.length ? Math.max(...abs) : 0;
  const minVal = abs.length ? Math.min(...abs) : 0;
  const sci = maxVal >= 1e8 || (abs.length > 0 && (minVal < 1e-4 || maxVal / minVal > 1e3));
  const hasNonFinite = finite.length < values.length;
  if (finite.length === 0) {
    return (x) => (Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf");
  }
  let width: number;
  let fmt: (x: number) => string;
  if (sci) {
    const parts = finite.map((x) => scientificMaxPrec(x, precision));
    const fracLen = Math.max(...parts.map(([m]) => m.length - m.indexOf(".") - 1));
    const expLen = Math.max(2, ...parts.map(([, e]) => String(Math.abs(e)).length));
    const padLeft = Math.max(...parts.map(([m]) => m.indexOf(".")));
    fmt = (x) => {
      const [m, e] = x.toExponential(fracLen).split("e");
      const exp = Number(e);
      const mant = fracLen === 0 ? `${m}.` : m;
      const intLen = mant.indexOf(".");
      return `${" ".repeat(padLeft - intLen)}${mant}e${exp < 0 ? "-" : "+"}${String(Math.abs(exp)).padStart(expLen, "0")}`;
    };
    width = padLeft + 1 + fracLen + 2 + expLen;
  } else {
    const strs = finite.map((x) => positionalMaxPrec(x, precision));
    const padLeft = Math.max(...strs.map((s) => s.indexOf(".")));
    const padRight = Math.max(...strs.map((s) => s.length - s.indexOf(".") - 1));
    fmt = (x) => {
      const s = positionalMaxPrec(x, precision);
      const dot = s.indexOf(".");
      return " ".repeat(padLeft - dot) + s + " ".repeat(padRight - (s.length - dot - 1));
    };
    width = padLeft + 1 + padRight;
  }
  return (x) => {
    if (Number.isFinite(x)) return fmt(x);
    const s = Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
    return hasNonFinite ? s.padStart(width) : s;
  };
}

/** str(ndarray) with NumPy's default print options: "[[1. 2.]\n [3. 4.]]". Rows wrap at 75 columns. */
export function formatArray(a: NDArray): string {
  const fmt = makeFormatter(a.data);
  if (a.ndim === 0) return fmt(a.data[0]).trim();
  const linewidth = 75;
  const render = (axis: number, off: number, indent: string): string => {
    const n = a.shape[axis];
    if (axis === a.ndim - 1) {
      const lines: string[] = [];
      let line = "[";
      for (let i = 0; i < n; i++) {
        const word = fmt(a.data[off + i]);
        const sep = i === 0 ? "" : " ";
        if (line.length + sep.length + word.length + (i === n - 1 ? 1 + a.ndim - 1 : 0) > linewidth && i > 0) {
          lines.push(line);
          line = indent + " " + word;
        } else line += sep + word;
      }
      lines.push(line + "]");
      return lines.join("\n");
    }
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(render(axis + 1, off + i * a.strides[axis], indent + " "));
    const blank = "\n".repeat(a.ndim - 1 - axis);
    return "[" + parts.join(blank + indent + " ") + "]";
  };
  return render(0, 0, "");
}
