// Tiny DOM helpers: build elements without a framework, find them with a clear error.

type Attrs = Record<string, string | number | boolean | undefined>;
type Child = Node | string | null | undefined | false;

/** h("div", {class: "x"}, child, …): an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** document.getElementById that names a missing id (or an element of the wrong kind) instead of returning null. */
export function byId(id: string): HTMLElement;
export function byId<T extends HTMLElement>(id: string, kind: new () => T): T;
export function byId(id: string, kind: new () => HTMLElement = HTMLElement): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: element #${id} is missing from the HTML`);
  const tag = el.tagName.toLowerCase();
  if (!(el instanceof kind)) throw new Error(`page: element #${id} is a <${tag}>, expected a ${kind.name}`);
  return el;
}

/** Set text only when it changed (cheap to call every frame). */
export function setText(el: Element, text: string): void {
  if (el.textContent !== text) el.textContent = text;
}

/** A number for a matrix cell: fixed decimals, a real minus sign, −0 shown as 0. */
export function fmt(v: number, digits = 4): string {
  if (!Number.isFinite(v)) return String(v);
  const s = (Object.is(v, -0) ? 0 : v).toFixed(digits);
  return s.startsWith("-") ? "−" + s.slice(1) : s;
}

/** A number with `sig` significant digits, plain notation unless it is tiny or huge. */
export function fmtSig(v: number, sig = 6): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return "0";
  const a = Math.abs(v);
  const s = a >= 1e-4 && a < 1e7 ? String(Number(v.toPrecision(sig))) : v.toExponential(sig - 1);
  return s.startsWith("-") ? "−" + s.slice(1) : s;
}
