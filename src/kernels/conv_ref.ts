// The direct-loop 2-D convolution (cross-correlation, as every deep-learning library calls it): the
// test oracle for Conv2D's im2col + GEMM path. Deliberately the plainest possible code — seven nested
// loops straight from the definition, explicit bounds checks instead of a padded copy, float64 output —
// so that it is obviously right rather than fast. Used only by tests.
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// and its gradients, accumulated term by term over the same seven loops:
//   dW[o,c,p,q] += dy[n,o,i,j] · x_pad[…]      db[o] += dy[n,o,i,j]      dx_pad[…] += dy[n,o,i,j] · W[o,c,p,q]

import { NDArray } from "../nd/ndarray.ts";

export interface ConvRefOptions {
  /** [sh, sw], default [1, 1]. */
  stride?: readonly [number, number];
  /** Zero padding [top, bottom, left, right], default none. */
  padding?: readonly [number, number, number, number];
  /** [dh, dw], default [1, 1]. */
  dilation?: readonly [number, number];
}

interface Resolved {
  N: number; C: number; H: number; W: number;
  O: number; kh: number; kw: number;
  sh: number; sw: number; dh: number; dw: number;
  top: number; left: number;
  OH: number; OW: number;
}

function resolve(x: NDArray, w: NDArray, opts: ConvRefOptions): Resolved {
  const [N, C, H, W] = x.shape;
  const [O, Cw, kh, kw] = w.shape;
  if (x.ndim !== 4 || w.ndim !== 4 || C !== Cw) throw new RangeError(`conv2dRef: x (N, C, H, W) and w (O, C, kh, kw) do not match: ${x.shape.join("x")} vs ${w.shape.join("x")}`);
  const [sh, sw] = opts.stride ?? [1, 1];
  const [top, bottom, left, right] = opts.padding ?? [0, 0, 0, 0];
  const [dh, dw] = opts.dilation ?? [1, 1];
  const OH = Math.floor((H + top + bottom - dh * (kh - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + left + right - dw * (kw - 1) - 1) / sw) + 1;
  if (OH < 1 || OW < 1) throw new RangeError("conv2dRef: kernel larger than the padded input");
  return { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW };
}

/** y = conv2d(x, w) + b with x (N, C, H, W), w (O, C, kh, kw), b (O) or null; y (N, O, OH, OW) float64. */
export function conv2dForwardRef(x: NDArray, w: NDArray, b: NDArray | null, opts: ConvRefOptions = {}): NDArray {
  const { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW } = resolve(x, w, opts);
  const y = new NDArray(new Float64Array(N * O * OH * OW), [N, O, OH, OW]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let sum = b === null ? 0 : b.data[o];
          for (let c = 0; c < C; c++) {
            for (let p = 0; p < kh; p++) {
              for (let q = 0; q < kw; q++) {
                const r = i * sh + p * dh - top;
                const s = j * sw + q * dw - left;
                if (r < 0 || r >= H || s < 0 || s >= W) continue; // x_pad is zero here
                sum += w.data[((o * C + c) * kh + p) * kw + q] * x.data[((n * C + c) * H + r) * W + s];
              }
            }
          }
          y.data[((n * O + o) * OH + i) * OW + j] = sum;
        }
      }
    }
  }
  return y;
}

/** Gradients of L = Σ dy·y with respect to x, w and b, as fresh float64 arrays (db is returned whether or not the layer has a bias). */
export function conv2dBackwardRef(x: NDArray, w: NDArray, dy: NDArray, opts: ConvRefOptions = {}): { dx: NDArray; dw: NDArray; db: NDArray } {
  const { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW } = resolve(x, w, opts);
  const dx = new NDArray(new Float64Array(x.size), x.shape);
  const dW = new NDArray(new Float64Array(w.size), w.shape);
  const db = new NDArray(new Float64Array(O), [O]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          const g = dy.data[((n * O + o) * OH + i) * OW + j];
          db.data[o] += g;
          for (let c = 0; c < C; c++) {
            for (let p = 0; p < kh; p++) {
              for (let q = 0; q < kw; q++) {
                const r = i * sh + p * dh - top;
                const s = j * sw + q * dw - left;
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                const wi = ((o * C + c) * kh + p) * kw + q;
                const xi = ((n * C + c) * H + r) * W + s;
                dW.data[wi] += g * x.data[xi];
                dx.data[xi] += g * w.data[wi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw: dW, db };
}
