// KaTeX rendering (bundled with its CSS and fonts by Vite: no CDN) and number formatting for TeX.

import katex from "katex";
import "katex/dist/katex.min.css";

/** Render TeX into an element, display style. Errors throw: a broken formula is a bug, not content. */
export function renderTex(el: HTMLElement, tex: string, display = true): void {
  if (el.dataset.tex === tex) return; // unchanged: skip the re-layout
  katex.render(tex, el, { displayMode: display, throwOnError: true, strict: "error", output: "html" });
  el.dataset.tex = tex;
}

/** A number as TeX with `sig` significant digits: 0.0123, −4.56, 1.23\times10^{-7}. */
export function texNum(v: number, sig = 4): string {
  if (!Number.isFinite(v)) return `\\text{${String(v)}}`;
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e6) return String(Number(v.toPrecision(sig)));
  const [m, e] = v.toExponential(sig - 1).split("e");
  return `${m}\\times10^{${String(Number(e))}}`;
}

/** texNum wrapped in parentheses when negative, for use as a factor: (−0.5)·2. */
export function texFactor(v: number, sig = 4): string {
  const s = texNum(v, sig);
  return v < 0 ? `(${s})` : s;
}
