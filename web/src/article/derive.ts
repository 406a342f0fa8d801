// The chain rule for one weight, as TeX with the current numbers substituted term by term
// (docs/derivation.md §1, eqs. 1–8). Pure functions of a StepTrace: no DOM, so tests can render them
// with KaTeX in Node.

import type { NDArray } from "handprop";
import { texFactor, texNum } from "../tex.ts";
import type { StepTrace } from "handprop";
import type { WeightRef } from "./session.ts";

/** Input pixel X[a, b] that kernel entry w1[p, q] meets when producing z1[i, j] (eq. 1: the flip). */
export function pixelFor(i: number, j: number, p: number, q: number): [number, number] {
  return [i + 1 - p, j + 1 - q];
}

const n = texNum;
const f = texFactor;

/** z1[i, j] written out: the four products of the window at (i, j), then numbers, then tanh. */
export function forwardWindowTex(t: StepTrace, x: NDArray, w1: NDArray, i: number, j: number): string {
  const terms: string[] = [];
  const nums: string[] = [];
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      const [p, q] = [1 - r, 1 - c]; // pixel X[i+r, j+c] meets w1[1−r, 1−c]
      terms.push(`X[${i + r},${j + c}]\\,w_1[${p},${q}]`);
      nums.push(`${n(x.get(i + r, j + c), 1)}\\cdot${f(w1.get(p, q))}`);
    }
  }
  const z = t.layer_1.get(i, j);
  return [
    "\\begin{aligned}",
    `z_1[${i},${j}] &= ${terms.join(" + ")} \\\\`,
    `&= ${nums.join(" + ")} = ${n(z, 6)} \\\\`,
    `a_1[${i},${j}] &= \\tanh(z_1[${i},${j}]) = ${n(t.layer_1_act.get(i, j), 6)}`,
    "\\end{aligned}",
  ].join("\n");
}

/** Rows of an aligned block joined by TeX line breaks; `gap` adds space after a row. */
function aligned(rows: { tex: string; gap?: boolean }[]): string {
  const body = rows.map((r, i) => r.tex + (i === rows.length - 1 ? "" : r.gap ? " \\\\[6pt]" : " \\\\")).join("\n");
  return `\\begin{aligned}\n${body}\n\\end{aligned}`;
}

/** The derivation of ∂L/∂w for one weight, ending in the value the training step uses. */
export function derivationTex(t: StepTrace, x: NDArray, y: number, w2: NDArray, w: WeightRef): string {
  const o = t.layer_2_act.data[0];
  const dLdo = t.grad_2_part_1.data[0];
  const dodz = t.grad_2_part_2.data[0];
  const delta2 = dLdo * dodz;

  if (w.m === "w2") {
    const k = w.k;
    const [i, j] = [Math.floor(k / 2), k % 2];
    const a = t.layer_1_act_vec.data[k];
    return aligned([
      {
        tex: `\\frac{\\partial L}{\\partial w_2[${k}]} &= \\underbrace{\\frac{\\partial L}{\\partial o}}_{o-y}\\cdot\\underbrace{\\frac{\\partial o}{\\partial z_2}}_{\\sigma'(z_2)=o(1-o)}\\cdot\\underbrace{\\frac{\\partial z_2}{\\partial w_2[${k}]}}_{\\mathbf a_1[${k}]=a_1[${i},${j}]}`,
        gap: true,
      },
      { tex: `&= (${n(o, 6)} - ${n(y, 6)})\\cdot ${n(o, 6)}\\,(1 - ${n(o, 6)})\\cdot ${f(a, 6)}` },
      { tex: `&= ${f(dLdo, 6)}\\cdot ${f(dodz, 6)}\\cdot ${f(a, 6)}` },
      { tex: `&= \\boldsymbol{${n(t.grad_2.data[k], 8)}}` },
    ]);
  }

  const { p, q } = w;
  const xi = p === 1 ? "i" : "i+1";
  const xj = q === 1 ? "j" : "j+1";
  const rows: { tex: string; gap?: boolean }[] = [
    {
      tex: `\\frac{\\partial L}{\\partial w_1[${p},${q}]} &= \\sum_{i,j}\\frac{\\partial L}{\\partial o}\\,\\frac{\\partial o}{\\partial z_2}\\,\\frac{\\partial z_2}{\\partial a_1[i,j]}\\,\\frac{\\partial a_1[i,j]}{\\partial z_1[i,j]}\\,\\frac{\\partial z_1[i,j]}{\\partial w_1[${p},${q}]}`,
    },
    {
      tex: `&= \\sum_{i,j}\\underbrace{(o-y)\\,\\sigma'(z_2)}_{\\delta_2}\\;w_2[2i+j]\\;\\underbrace{(1-a_1[i,j]^2)}_{\\tanh'(z_1[i,j])}\\;X[${xi},\\,${xj}] = \\sum_{i,j} G[i,j]\\,X[${xi},\\,${xj}]`,
      gap: true,
    },
    {
      tex: `\\delta_2 &= (${n(o, 6)} - ${n(y, 6)})\\cdot ${n(o, 6)}\\,(1 - ${n(o, 6)}) = ${f(dLdo, 6)}\\cdot ${f(dodz, 6)} = ${n(delta2, 6)}`,
      gap: true,
    },
  ];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      const k = 2 * i + j;
      rows.push({
        tex: `G[${i},${j}] &= \\delta_2\\cdot w_2[${k}]\\cdot(1-a_1[${i},${j}]^2) = ${f(delta2)}\\cdot${f(w2.get(k, 0))}\\cdot${f(t.grad_1_part_2.get(i, j))} = ${n(t.grad_1_temp_1.get(i, j), 6)}`,
        gap: k === 3,
      });
    }
  }
  const sym: string[] = [];
  const num: string[] = [];
  for (let i = 0; i < 2; i++) {
    for (let j = 0; j < 2; j++) {
      const [a, b] = pixelFor(i, j, p, q);
      sym.push(`G[${i},${j}]\\,X[${a},${b}]`);
      num.push(`${f(t.grad_1_temp_1.get(i, j))}\\cdot ${n(x.get(a, b), 1)}`);
    }
  }
  rows.push(
    { tex: `\\frac{\\partial L}{\\partial w_1[${p},${q}]} &= ${sym.join(" + ")}` },
    { tex: `&= ${num.join(" + ")}` },
    { tex: `&= \\boldsymbol{${n(t.grad_1.get(p, q), 8)}}` },
  );
  return aligned(rows);
}

/** One cell of convolve2d(X, rot180(G)): G laid on X unflipped at offset (a, b), then the outer rot180. */
export function kernelGradWindowTex(t: StepTrace, x: NDArray, a: number, b: number): string {
  const sym: string[] = [];
  const num: string[] = [];
  for (let r = 0; r < 2; r++) {
    for (let c = 0; c < 2; c++) {
      sym.push(`X[${a + r},${b + c}]\\,G[${r},${c}]`);
      num.push(`${n(x.get(a + r, b + c), 1)}\\cdot${f(t.grad_1_temp_1.get(r, c))}`);
    }
  }
  const v = t.grad_1_conv.get(a, b);
  return [
    "\\begin{aligned}",
    `C[${a},${b}] &= ${sym.join(" + ")} \\\\`,
    `&= ${num.join(" + ")} = ${n(v, 6)} \\\\`,
    `\\frac{\\partial L}{\\partial w_1[${1 - a},${1 - b}]} &= \\operatorname{rot180}(C)[${1 - a},${1 - b}] = C[${a},${b}]`,
    "\\end{aligned}",
  ].join("\n");
}
