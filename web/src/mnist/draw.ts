// The drawing pad. A drawing becomes an MNIST-like 28×28 image through the library's digit
// preprocessing (src/data/digits.ts: fit the ink into 20×20, centre it by mass, area-average into the
// 28×28 frame), the same code `handprop predict` runs on image files.

import { preprocessDigit, rgbaToGray } from "handprop";

const PAD = 280;
const STROKE = 22;

export class DrawingPad {
  private readonly ctx: CanvasRenderingContext2D;
  private last: { x: number; y: number } | null = null;
  /** True when the pad holds ink. */
  inked = false;

  constructor(
    readonly canvas: HTMLCanvasElement,
    private readonly onChange: (final: boolean) => void,
  ) {
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

  /** The drawing as a centred 28×28 image (values in [0, 255]), or null when the pad is empty. */
  toMnist(): Float64Array | null {
    return toMnist(this.canvas);
  }
}

/** A canvas's picture as MNIST's 28×28 white-on-black frame, or null when it holds no ink. */
export function toMnist(src: HTMLCanvasElement): Float64Array | null {
  const { width, height } = src;
  const rgba = src.getContext("2d", { willReadFrequently: true })!.getImageData(0, 0, width, height).data;
  const digit = preprocessDigit(rgbaToGray(rgba, width, height));
  return digit.ink ? digit.pixels : null;
}
