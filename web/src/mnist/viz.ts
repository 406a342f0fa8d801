// Heatmaps on small canvases: feature maps (sequential colours) and filters (diverging colours).

/** Viridis, sampled at five stops: dark purple → blue → teal → green → yellow. */
const VIRIDIS: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

function ramp(stops: [number, number, number][], t: number): [number, number, number] {
  const u = Math.max(0, Math.min(1, t)) * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(u));
  const f = u - i;
  const a = stops[i];
  const b = stops[i + 1];
  return [a[0] + (b[0] - a[0]) * f, a[1] + (b[1] - a[1]) * f, a[2] + (b[2] - a[2]) * f];
}

/** Blue (negative) → white (0) → red (positive). */
function diverging(t: number): [number, number, number] {
  const u = Math.max(-1, Math.min(1, t));
  return u < 0
    ? [255 + (37 - 255) * -u, 255 + (99 - 255) * -u, 255 + (235 - 255) * -u]
    : [255 + (217 - 255) * u, 255 + (48 - 255) * u, 255 + (37 - 255) * u];
}

export type Palette = "viridis" | "diverging" | "gray";

/**
 * Paint h×w values (starting at `offset` in `data`) onto a canvas of that size. Sequential palettes map
 * [lo, hi] to the colour ramp; "diverging" maps [−hi, hi] with 0 as white.
 */
export function paint(
  canvas: HTMLCanvasElement,
  data: ArrayLike<number>,
  offset: number,
  h: number,
  w: number,
  lo: number,
  hi: number,
  palette: Palette,
): void {
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext("2d")!;
  const img = ctx.createImageData(w, h);
  const span = hi - lo || 1;
  for (let k = 0; k < h * w; k++) {
    const v = data[offset + k];
    let rgb: [number, number, number];
    if (palette === "diverging") rgb = diverging(v / (hi || 1));
    else if (palette === "gray") {
      const g = 255 * Math.max(0, Math.min(1, (v - lo) / span));
      rgb = [g, g, g];
    } else rgb = ramp(VIRIDIS, (v - lo) / span);
    img.data[4 * k] = rgb[0];
    img.data[4 * k + 1] = rgb[1];
    img.data[4 * k + 2] = rgb[2];
    img.data[4 * k + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

/** Min and max of data[offset … offset+n). */
export function range(data: ArrayLike<number>, offset = 0, n = data.length - offset): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let k = offset; k < offset + n; k++) {
    if (data[k] < lo) lo = data[k];
    if (data[k] > hi) hi = data[k];
  }
  return [lo, hi];
}
