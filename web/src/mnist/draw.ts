// The drawing pad and the preprocessing that turns a drawing into an MNIST-like 28×28 image.
//
// MNIST digits were size-normalised to fit a 20×20 box (keeping the aspect ratio), anti-aliased, and
// placed in a 28×28 image so that their centre of mass is at the centre. A drawing gets the same
// treatment: crop to the ink's bounding box, scale into 20×20, centre by mass.

const PAD = 280;
const STROKE = 22;

export class DrawingPad {
  private readonly ctx: CanvasRenderingContext2D;
  private last: { x: number; y: number } | null = null;
  /** True when the pad holds ink. */
  inked = false;

  constructor(readonly canvas: HTMLCanvasElement, private readonly onChange: (final: boolean) => void) {
    canvas.width = PAD;
    canvas.height = PAD;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    if (!ctx) throw new Error("drawing pad: no 2D canvas context");
    this.ctx = ctx;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => {
      canvas.setPointerCapture(e.pointerId);
      this.last = this.point(e);
      this.dot(this.last);
      e.preventDefault();
    });
    canvas.addEventListener("pointermove", (e) => {
      if (!this.last) return;
      const p = this.point(e);
      this.line(this.last, p);
      this.last = p;
    });
    const end = () => {
      if (!this.last) return;
      this.last = null;
      this.onChange(true);
    };
    canvas.addEventListener("pointerup", end);
    canvas.addEventListener("pointercancel", end);
  }

  private point(e: PointerEvent): { x: number; y: number } {
    const r = this.canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) / r.width) * PAD, y: ((e.clientY - r.top) / r.height) * PAD };
  }

  private dot(p: { x: number; y: number }): void {
    this.ctx.beginPath();
    this.ctx.arc(p.x, p.y, STROKE / 2, 0, 2 * Math.PI);
    this.ctx.fill();
    this.inked = true;
    this.onChange(false);
  }

  private line(a: { x: number; y: number }, b: { x: number; y: number }): void {
    this.ctx.beginPath();
    this.ctx.moveTo(a.x, a.y);
    this.ctx.lineTo(b.x, b.y);
    this.ctx.stroke();
    this.inked = true;
    this.onChange(false);
  }

  clear(): void {
    const c = this.ctx;
    c.fillStyle = "#000";
    c.fillRect(0, 0, PAD, PAD);
    c.fillStyle = "#fff";
    c.strokeStyle = "#fff";
    c.lineWidth = STROKE;
    c.lineCap = "round";
    c.lineJoin = "round";
    this.inked = false;
  }

  /** Show a 28×28 uint8 image on the pad, scaled up (for the "test image" button). */
  showDigit(pixels: ArrayLike<number>): void {
    const img = new ImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = pixels[i];
      img.data[4 * i + 3] = 255;
    }
    const small = document.createElement("canvas");
    small.width = small.height = 28;
    small.getContext("2d")!.putImageData(img, 0, 0);
    this.clear();
    this.ctx.imageSmoothingEnabled = true;
    this.ctx.drawImage(small, 0, 0, PAD, PAD);
    this.inked = true;
  }

  /** The drawing as a centred 28×28 uint8 image, or null when the pad is empty. */
  toMnist(): Uint8Array | null {
    return toMnist(this.canvas);
  }
}

/** Crop to the ink, scale into a 20×20 box, centre the mass in 28×28 (MNIST's own preprocessing). */
export function toMnist(src: HTMLCanvasElement): Uint8Array | null {
  const w = src.width;
  const h = src.height;
  const data = src.getContext("2d", { willReadFrequently: true })!.getImageData(0, 0, w, h).data;
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (data[4 * (y * w + x)] > 16) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  if (x1 < 0) return null;
  const bw = x1 - x0 + 1;
  const bh = y1 - y0 + 1;
  const scale = 20 / Math.max(bw, bh);
  const tw = bw * scale;
  const th = bh * scale;
  // Scale in halving steps: one big bilinear downscale would skip most pixels and alias.
  let stage: HTMLCanvasElement = src;
  let sx = x0;
  let sy = y0;
  let sw = bw;
  let sh = bh;
  while (sw * 0.5 > tw * 1.5) {
    const next = document.createElement("canvas");
    next.width = Math.max(1, Math.ceil(sw / 2));
    next.height = Math.max(1, Math.ceil(sh / 2));
    const c = next.getContext("2d")!;
    c.imageSmoothingEnabled = true;
    c.imageSmoothingQuality = "high";
    c.drawImage(stage, sx, sy, sw, sh, 0, 0, next.width, next.height);
    stage = next;
    sx = 0;
    sy = 0;
    sw = next.width;
    sh = next.height;
  }
  const box = document.createElement("canvas");
  box.width = box.height = 28;
  const bc = box.getContext("2d", { willReadFrequently: true })!;
  bc.fillStyle = "#000";
  bc.fillRect(0, 0, 28, 28);
  bc.imageSmoothingEnabled = true;
  bc.imageSmoothingQuality = "high";
  bc.drawImage(stage, sx, sy, sw, sh, (28 - tw) / 2, (28 - th) / 2, tw, th);
  const boxed = bc.getImageData(0, 0, 28, 28).data;
  // Centre of mass → shift it to the image centre (13.5, 13.5 in pixel-centre coordinates).
  let m = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const v = boxed[4 * (y * 28 + x)];
      m += v;
      mx += v * x;
      my += v * y;
    }
  }
  const dx = Math.round(13.5 - mx / m);
  const dy = Math.round(13.5 - my / m);
  const out = new Uint8Array(784);
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const fx = x - dx;
      const fy = y - dy;
      if (fx >= 0 && fx < 28 && fy >= 0 && fy < 28) out[y * 28 + x] = boxed[4 * (fy * 28 + fx)];
    }
  }
  return out;
}
