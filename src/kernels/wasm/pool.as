// Max pooling for WebAssembly (AssemblyScript): the forward of src/nn/pool.ts's MaxPool2D.
//
// y[nc, i, j] = max of x[nc] over the window rows i·sh − ph … + kh − 1, columns j·sw − pw … + kw − 1,
// clipped to the image (padding never wins). arg[nc, i, j] = flat index into x of the winner: the first
// maximum in row-major window order, and the first NaN once one is seen (as PyTorch, and pool.ts).
//
// Parallel parts split the NC planes: a window never leaves its plane, so each part's y, arg and dx
// entries are its own, and backward's dx[arg[o]] += dy[o] runs in the same o order within every plane.

import { partStart } from "./parallel";

export function maxPoolForward(
  NC: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, OH: i32, OW: i32,
  x: usize, y: usize, arg: usize,
): void {
  maxPoolForwardPart(0, 1, 0, NC, H, W, kh, kw, sh, sw, ph, pw, OH, OW, x, y, arg);
}

/** Part t of T of maxPoolForward: planes [nc0, nc1) (arg still indexes the whole x). No scratch (_ws). */
export function maxPoolForwardPart(
  t: i32, T: i32, _ws: usize, NC: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, ph: i32, pw: i32, OH: i32, OW: i32,
  x: usize, y: usize, arg: usize,
): void {
  const nc0 = partStart(NC, t, T, 1);
  const nc1 = partStart(NC, t + 1, T, 1);
  if (kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0) {
    maxPool2x2(nc0, nc1, H, W, OH, OW, x, y, arg);
    return;
  }
  let o: usize = <usize>(nc0 * OH * OW);
  for (let nc = nc0; nc < nc1; nc++) {
    const plane = nc * H * W;
    for (let i = 0; i < OH; i++) {
      const hStart = i * sh - ph;
      const h0 = max(hStart, 0);
      const h1 = min(hStart + kh, H);
      for (let j = 0; j < OW; j++) {
        const wStart = j * sw - pw;
        const w0 = max(wStart, 0);
        const w1 = min(wStart + kw, W);
        let bestIdx = plane + h0 * W + w0;
        let best = load<f32>(x + (<usize>bestIdx << 2));
        for (let h = h0; h < h1; h++) {
          const row = plane + h * W;
          for (let w = w0; w < w1; w++) {
            const v = load<f32>(x + (<usize>(row + w) << 2));
            if (v > best || (v != v && best == best)) {
              best = v;
              bestIdx = row + w;
            }
          }
        }
        store<f32>(y + (o << 2), best);
        store<i32>(arg + (o << 2), bestIdx);
        o++;
      }
    }
  }
}

/** dx (nx floats) = 0, then dx[arg[o]] += dy[o] for o = 0 … n−1 in order. */
export function maxPoolBackward(n: i32, dy: usize, arg: usize, dx: usize, nx: i32): void {
  maxPoolBackwardPart(0, 1, 0, 1, nx, n, dy, arg, dx);
}

/**
 * Part t of T of maxPoolBackward over NC planes of inPlane (dx) and outPlane (dy, arg) floats:
 * planes [nc0, nc1) of dx = 0, then dx[arg[o]] += dy[o] for those planes' o in order. No scratch (_ws).
 */
export function maxPoolBackwardPart(t: i32, T: i32, _ws: usize, NC: i32, inPlane: i32, outPlane: i32, dy: usize, arg: usize, dx: usize): void {
  const nc0 = partStart(NC, t, T, 1);
  const nc1 = partStart(NC, t + 1, T, 1);
  memory.fill(dx + (<usize>(nc0 * inPlane) << 2), 0, <usize>((nc1 - nc0) * inPlane) << 2);
  const o1 = nc1 * outPlane;
  for (let o = nc0 * outPlane; o < o1; o++) {
    const d = dx + (<usize>load<i32>(arg + (<usize>o << 2)) << 2);
    store<f32>(d, load<f32>(d) + load<f32>(dy + (<usize>o << 2)));
  }
}

/** One step of the running max over 4 windows at once: v wins where v > best, or v is the first NaN. */
@inline function better(v: v128, best: v128): v128 {
  return v128.or(f32x4.gt(v, best), v128.and(f32x4.ne(v, v), f32x4.eq(best, best)));
}

/**
 * The 2×2, stride-2, unpadded case (LeNet's), four outputs per step and no branches (random signs make
 * the scalar compare mispredict half the time). The window is visited in the scalar order — (0,0),
 * (0,1), (1,0), (1,1) — with the same comparison, so y and arg are identical to the scalar loop's.
 */
function maxPool2x2(nc0: i32, nc1: i32, H: i32, W: i32, OH: i32, OW: i32, x: usize, y: usize, arg: usize): void {
  const OW4 = OW & ~3;
  const lane = i32x4(0, 2, 4, 6);
  let o = nc0 * OH * OW;
  for (let nc = nc0; nc < nc1; nc++) {
    const plane = nc * H * W;
    for (let i = 0; i < OH; i++) {
      const row0 = plane + 2 * i * W;
      const row1 = row0 + W;
      for (let j = 0; j < OW4; j += 4) {
        const p0 = x + (<usize>(row0 + 2 * j) << 2);
        const p1 = x + (<usize>(row1 + 2 * j) << 2);
        const a0 = v128.load(p0), a1 = v128.load(p0, 16);
        const b0 = v128.load(p1), b1 = v128.load(p1, 16);
        const i00 = i32x4.add(i32x4.splat(row0 + 2 * j), lane); // flat index of each window's (0, 0)
        let best = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6);
        let idx = i00;
        let v = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
        let m = better(v, best);
        best = v128.bitselect(v, best, m);
        idx = v128.bitselect(i32x4.add(i00, i32x4.splat(1)), idx, m);
        v = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6);
        m = better(v, best);
        best = v128.bitselect(v, best, m);
        idx = v128.bitselect(i32x4.add(i00, i32x4.splat(W)), idx, m);
        v = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
        m = better(v, best);
        best = v128.bitselect(v, best, m);
        idx = v128.bitselect(i32x4.add(i00, i32x4.splat(W + 1)), idx, m);
        v128.store(y + (<usize>(o + j) << 2), best);
        v128.store(arg + (<usize>(o + j) << 2), idx);
      }
      for (let j = OW4; j < OW; j++) {
        let bestIdx = row0 + 2 * j;
        let best = load<f32>(x + (<usize>bestIdx << 2));
        for (let k = 1; k < 4; k++) {
          const idx = (k < 2 ? row0 : row1) + 2 * j + (k & 1);
          const v = load<f32>(x + (<usize>idx << 2));
          if (v > best || (v != v && best == best)) {
            best = v;
            bestIdx = idx;
          }
        }
        store<f32>(y + (<usize>(o + j) << 2), best);
        store<i32>(arg + (<usize>(o + j) << 2), bestIdx);
      }
      o += OW;
    }
  }
}
