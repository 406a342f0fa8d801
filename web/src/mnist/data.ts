// The MNIST subset shipped with the page (written by web/scripts/make-subset.mjs): uint8 pixels and
// labels, fetched from the page's data/ folder. Works in the page and in the worker.

export interface DigitSet {
  count: number;
  /** count·784 bytes, row-major 28×28 per image, 0 = background. */
  images: Uint8Array;
  labels: Uint8Array;
}

interface SplitInfo {
  count: number;
  images: string;
  labels: string;
}

async function fetchBytes(url: URL, expected: number): Promise<Uint8Array> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url.href}: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length !== expected) throw new Error(`${url.href}: ${bytes.length} bytes, expected ${expected}`);
  return bytes;
}

/** Load one split ("train" or "test") from the folder `dataUrl` (ending in "/"). */
export async function loadSplit(dataUrl: string, split: "train" | "test"): Promise<DigitSet> {
  const manifestUrl = new URL("mnist-subset.json", dataUrl);
  const res = await fetch(manifestUrl);
  if (!res.ok)
    throw new Error(`${manifestUrl.href}: HTTP ${res.status} (the build writes it: web/scripts/make-subset.mjs)`);
  const manifest = (await res.json()) as { splits?: Record<string, SplitInfo | undefined> };
  const info = manifest.splits?.[split];
  if (!info) throw new Error(`${manifestUrl.href}: no "${split}" split`);
  const [images, labels] = await Promise.all([
    fetchBytes(new URL(info.images, dataUrl), info.count * 784),
    fetchBytes(new URL(info.labels, dataUrl), info.count),
  ]);
  return { count: info.count, images, labels };
}
