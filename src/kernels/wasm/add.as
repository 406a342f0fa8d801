// Elementwise sum for WebAssembly SIMD (AssemblyScript): out = a + b over n floats, the Add merge's forward
// and a functional graph's fan-out sum (src/nn/merge.ts, graph.ts). One f32 add per element: the same bits
// as the JS loop's float64 add rounded to float32 (double rounding is exact for a sum of two floats).
// Parallel parts are contiguous ranges of elements (multiples of 4).

import { partStart } from "./parallel";

/** Part t of T of out[i] = a[i] + b[i], i < n (out may be a or b). No scratch (_ws). */
export function addPart(t: i32, T: i32, _ws: usize, n: i32, a: usize, b: usize, out: usize): void {
  const i0 = partStart(n, t, T, 4);
  const i1 = partStart(n, t + 1, T, 4);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(a + o), v128.load(b + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(a + o) + load<f32>(b + o));
  }
}
