// The linear memory the WebAssembly kernels run in: which instance a call runs on, the per-call scratch
// arena, the resident arrays, and typed-array views of it that survive memory growth.
//
// Memory. WebAssembly code can only read its own linear memory, not JS typed arrays. Two kinds of array:
//   - ordinary JS arrays (everything users and the other layers hand in or get back: inputs, parameters,
//     gradients, a model's output). A kernel call copies them into one scratch arena in linear memory,
//     runs, and copies its results out. The arena is reset at the start of every call, so nothing in it is
//     owned across calls; it grows (memory.grow) to the largest call seen and then stays put.
//   - resident arrays (the end of this file): inside a model's pass each layer's output is read only by
//     the model's next layers, so it is allocated in the shared-memory instance's linear memory itself and
//     the kernels read and write it where it lies. This removes the copies in and out that were most of a
//     streaming op's time (ReLU, pooling) and a tenth of a small convolution's; docs/ARCHITECTURE.md has
//     the measurements.
//
// Growing a WebAssembly.Memory detaches the ArrayBuffer behind every typed-array view of an ordinary
// memory (not of a shared one: that is why resident arrays live only in the shared instance's). Arena views
// never leave the adapters (wasm-ops.ts), and every one is obtained through a ViewCache, which notices a
// new `memory.buffer` (by identity) and recreates its views, so a growth during one call never invalidates
// the next. The cached views (one cache per op's context, one slot per operand) also mean the steady state
// allocates nothing.

import {
  PART_EXPORTS,
  SHARED_MAX_PAGES,
  loadShared,
  loadedSharedKernels,
  ordinaryKernels,
  wasmUnavailableReason,
  type KernelExports,
  type LoadedKernels,
  type PartFn,
} from "./wasm-loader.ts";

const PAGE = 65536;
/** First byte the arena hands out: the module has no static data, and 0 must stay free as "no pointer". */
const ARENA_BASE = 1024;

interface ActiveKernels {
  exports: KernelExports;
  memory: WebAssembly.Memory;
  parts: PartFn[]; // PART_EXPORTS, looked up once
}

function activate(k: LoadedKernels): ActiveKernels {
  return {
    exports: k.exports,
    memory: k.memory,
    parts: PART_EXPORTS.map((n) => k.exports[n]),
  };
}

/**
 * The instances: the ordinary one, and with threads the shared-memory one. Each call picks one (begin):
 * a call split across threads runs on the shared one, any other on the ordinary one, because V8 copies
 * into a shared memory at about half the speed of an ordinary one (TypedArray.set, relaxed atomics), and
 * the copies in and out are most of what a small or streaming call costs.
 */
const ordinary = ordinaryKernels === null ? null : activate(ordinaryKernels);
let threaded: ActiveKernels | null = null;
/** The current call's instance. */
export let cur: ActiveKernels | null = ordinary;

/** Run calls split across threads on this instance of the shared-memory build (null: no threads). */
export function useThreadedInstance(k: LoadedKernels | null): void {
  threaded = k === null ? null : sharedActive(k);
}

/** The shared-memory instance (one per process, wasm-loader's loadShared), activated once. */
let shared: ActiveKernels | null = null;

function sharedActive(k: LoadedKernels): ActiveKernels {
  if (shared === null || shared.memory !== k.memory) {
    shared = activate(k);
    heapTop = ARENA_BASE;
    freeExtents.length = 0;
  }
  return shared;
}

/** True when a call on T threads would run on the shared-memory instance (threads are set up). */
export function threadedInstanceReady(): boolean {
  return threaded !== null;
}

// ------------------------------------------------------------------------------------------------
// The scratch arena.

let top = ARENA_BASE;

/** Start a kernel call: everything allocated by the previous call is released. */
function resetArena(): void {
  // on the shared instance the resident blocks come first (below heapTop), the arena after them
  top = cur === shared ? heapTop : ARENA_BASE;
}

/**
 * Reserve `bytes` (64-byte aligned) and return its offset, growing the memory if needed. 64 bytes of
 * slack follow each block: kernels may read a partial vector past the end of an input (conv.as).
 */
export function alloc(bytes: number): number {
  // the kernels' size functions compute in f64, so a size is never a wrapped i32; this is the last line of
  // defence against one that is (a negative or fractional size would hand a kernel a too-small block)
  if (!Number.isInteger(bytes) || bytes < 0)
    throw new RangeError(`handprop: internal error: a wasm kernel asked for ${String(bytes)} bytes of scratch`);
  const mem = cur!.memory;
  const ptr = (top + 63) & ~63;
  top = ptr + bytes + 64;
  const size = mem.buffer.byteLength;
  if (top > size) {
    // grow by at least a quarter so a slowly rising high-water mark does not grow on every call
    const want = Math.max(top, size + (size >> 2));
    try {
      mem.grow(Math.ceil((want - size) / PAGE));
    } catch {
      try {
        mem.grow(Math.ceil((top - size) / PAGE));
      } catch (e) {
        throw new RangeError(
          `handprop: the wasm kernels need ${Math.ceil(top / 2 ** 20)} MiB of WebAssembly memory for this call, more than ` +
            `the engine allows (${(e as Error).message}): use smaller batches, or setBackend("js")`,
          { cause: e },
        );
      }
    }
  }
  return ptr;
}

/** Bytes of linear memory the instances span: the arenas' high-water marks and the resident blocks. */
export function wasmMemoryBytes(): number {
  return (ordinary?.memory.buffer.byteLength ?? 0) + (loadedSharedKernels()?.memory.buffer.byteLength ?? 0);
}

/** Views of one memory for one call site (see ViewCache). */
class ViewSet {
  buffer: ArrayBufferLike | null = null;
  readonly f32: (Float32Array | undefined)[] = [];
  readonly i32: (Int32Array | undefined)[] = [];
  readonly f64: (Float64Array | undefined)[] = [];
}

/**
 * Typed-array views of linear memory for one call site, one per slot (and per instance), reused while
 * their offset, length and the memory's buffer stay the same: after memory.grow, `memory.buffer` is a
 * new object (and an ordinary memory's old views are detached, length 0), so they are recreated.
 */
export class ViewCache {
  private readonly sets = [new ViewSet(), new ViewSet()]; // the ordinary instance's, the shared one's

  private check(): ViewSet {
    const set = this.sets[cur === ordinary ? 0 : 1];
    const buf = cur!.memory.buffer;
    if (buf !== set.buffer) {
      set.buffer = buf;
      set.f32.fill(undefined);
      set.i32.fill(undefined);
      set.f64.fill(undefined);
    }
    return set;
  }

  float32(slot: number, ptr: number, n: number): Float32Array {
    return this.view(this.check().f32, Float32Array, slot, ptr, n);
  }

  /** ptr must be 8-byte aligned (alloc's blocks are 64-byte aligned). */
  float64(slot: number, ptr: number, n: number): Float64Array {
    return this.view(this.check().f64, Float64Array, slot, ptr, n);
  }

  int32(slot: number, ptr: number, n: number): Int32Array {
    return this.view(this.check().i32, Int32Array, slot, ptr, n);
  }

  /**
   * Allocate src's length of float32s in the call's arena and copy src there through view `slot`
   * (TypedArray.set converts float64 operands): its address. A null src is absent: address 0.
   */
  put(slot: number, src: ArrayLike<number> | null): number {
    if (src === null) return 0;
    const p = alloc(src.length * 4);
    this.float32(slot, p, src.length).set(src);
    return p;
  }

  /**
   * An operand the call only reads: its address where it lies when it is resident in this call's memory
   * (no copy), else put(slot, src).
   */
  input(slot: number, src: HeldArray): number {
    const p = residentAddress(src);
    return p >= 0 ? p : this.put(slot, src);
  }

  /** Where the call writes output `dst`: its own address when it is resident in this call's memory, else arena space. */
  output(dst: HeldArray): number {
    const p = residentAddress(dst);
    return p >= 0 ? p : alloc(dst.length * 4);
  }

  /** After the call: copy output `dst` from ptr (through view `slot`) unless it was written where it lies. */
  take(slot: number, ptr: number, dst: HeldArray): void {
    if (ptr !== residentAddress(dst)) dst.set(this.float32(slot, ptr, dst.length));
  }

  /** take for an int32 output (view slot `slot` of the int32 views). */
  takeInt32(slot: number, ptr: number, dst: Int32Array): void {
    if (ptr !== residentAddress(dst)) dst.set(this.int32(slot, ptr, dst.length));
  }

  /** put for float64 data, kept float64 (view slot `slot` of the float64 views). */
  putFloat64(slot: number, src: Float64Array): number {
    const p = alloc(src.length * 8);
    this.float64(slot, p, src.length).set(src);
    return p;
  }

  /** put for int32 data (view slot `slot` of the int32 views). */
  putInt32(slot: number, src: Int32Array): number {
    const p = alloc(src.length * 4);
    this.int32(slot, p, src.length).set(src);
    return p;
  }

  /** The cached view in list[slot] if it still covers (ptr, n) of the current buffer, else a new one there. */
  private view<T extends Float32Array | Float64Array | Int32Array>(
    list: (T | undefined)[],
    make: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T,
    slot: number,
    ptr: number,
    n: number,
  ): T {
    let v = list[slot];
    if (v === undefined || v.byteOffset !== ptr || v.length !== n)
      list[slot] = v = new make(cur!.memory.buffer, ptr, n);
    return v;
  }
}

/**
 * Start a call on T threads: pick its instance (the shared one when T > 1, or when the call's outputs are
 * internal and resident arrays can be made, so that they are read and written where they lie) and reset
 * the arena.
 */
export function begin(T: number, operand?: HeldArray): KernelExports {
  cur =
    T > 1 && threaded !== null
      ? threaded
      : (internalOutputs && residentReady()) || (operand !== undefined && blocks.has(operand))
        ? shared
        : ordinary;
  if (cur === null)
    throw new Error(`handprop: the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  resetArena();
  return cur.exports;
}

// ------------------------------------------------------------------------------------------------
// Resident arrays.
//
// Inside a model's forward or backward pass a layer's output is read only by the next layer of the same
// model; Sequential and Model say so (setInternalOutputs) for every layer but the last. Such an output
// can then live in linear memory: the backend allocates it there (a Float32Array view of the shared
// instance's memory), the kernel that makes it writes it where it lies and the next kernel reads it
// there, with no copy in or out. Only the shared-memory instance holds them: growing a shared memory
// never detaches a view of it, so the array stays valid for as long as JS holds it. Anything else (the
// model's output, the user's arrays, parameters) stays an ordinary array and is copied as before.
//
// The blocks sit at the bottom of the shared memory, below the per-call arena (resetArena). Their owner
// (a backend context) releases a block when it replaces the array (another shape); a
// FinalizationRegistry returns the blocks of arrays that are dropped instead (a discarded model). Free
// space is kept as sorted, coalesced extents and reused first-fit, so the blocks span at most what is
// live plus its fragmentation, however batch sizes vary.

/** An array that may be resident: float32 data (float64 is never made resident), or max pooling's winners. */
type HeldArray = Float32Array | Float64Array | Int32Array;

let internalOutputs = false;
/** The end of the resident blocks in the shared memory (the arena of a call on it starts here). */
let heapTop = ARENA_BASE;
/** Free extents below heapTop, [start, end) pairs sorted by start and coalesced. */
const freeExtents: number[] = [];
/** Each resident array's block: its start and length in bytes. */
const blocks = new WeakMap<HeldArray, { ptr: number; bytes: number }>();
const collected =
  typeof FinalizationRegistry === "function"
    ? new FinalizationRegistry<{ ptr: number; bytes: number; memory: WebAssembly.Memory }>((b) => {
        if (shared !== null && shared.memory === b.memory) freeBlock(b.ptr, b.bytes);
      })
    : null;

/**
 * Whether the arrays kernels make now are internal to a model's pass (read only by its next layer, so they
 * may be resident); returns the previous setting.
 */
export function setInternalOutputs(on: boolean): boolean {
  const was = internalOutputs;
  internalOutputs = on;
  return was;
}

let residentAllowed = true;

/** For tests and benchmarks: false makes no more resident arrays (every call copies, as without them). */
export function allowResidentArrays(on: boolean): void {
  residentAllowed = on;
}

/** True when resident arrays can be made: internal outputs, and a shared memory (SharedArrayBuffer) to hold them. */
function residentReady(): boolean {
  if (!residentAllowed) return false;
  if (shared !== null) return true;
  if (sharedUnavailable || typeof SharedArrayBuffer !== "function") return false;
  const k = loadShared();
  if (typeof k === "string") sharedUnavailable = true;
  else sharedActive(k);
  return !sharedUnavailable;
}
let sharedUnavailable = false;

/** True if outputs made now would be resident (see residentArray). */
export function residentOutputs(): boolean {
  return internalOutputs && residentReady();
}

/**
 * True if a is a resident output that the next call will write where it lies (outputs are internal now):
 * such a call has no copies on the calling thread, so even a streaming op is worth splitting.
 */
export function residentOutput(a: HeldArray): boolean {
  return blocks.has(a) && residentOutputs();
}

/** The address of a resident array in the current call's memory, or −1 (not resident, or another instance's call). */
export function residentAddress(a: HeldArray): number {
  if (cur !== shared || cur === null) return -1;
  const b = blocks.get(a);
  return b === undefined ? -1 : b.ptr;
}

/** True if a is a resident array (see residentArray). */
export function isResident(a: HeldArray): boolean {
  return blocks.has(a);
}

/**
 * A zeroed resident array of n elements (Float32Array or Int32Array), or null when the blocks would pass
 * their limit (the caller makes an ordinary array instead: the same bits, with copies); only while
 * residentOutputs().
 */
export function residentArray<T extends Float32Array | Int32Array>(
  make: new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T,
  n: number,
): T | null {
  const k = shared!;
  const bytes = (Math.ceil((n * 4) / 64) + 1) * 64; // 64-byte aligned, 64 bytes of slack as alloc's blocks
  const ptr = takeBlock(k.memory, bytes);
  if (ptr < 0) return null;
  const a = new make(k.memory.buffer, ptr, n);
  a.fill(0);
  blocks.set(a, { ptr, bytes });
  collected?.register(a, { ptr, bytes, memory: k.memory }, a);
  return a;
}

/** Give a's block back (a must not be used again); a no-op for an array that is not resident. */
export function releaseResident(a: HeldArray): void {
  const b = blocks.get(a);
  if (b === undefined) return;
  blocks.delete(a);
  collected?.unregister(a);
  freeBlock(b.ptr, b.bytes);
}

/**
 * The most bytes the resident blocks may span. Blocks of dropped arrays come back only when the
 * FinalizationRegistry runs, after the current job: a synchronous loop that builds and trains model after
 * model (a sweep of fit calls) holds every model's blocks until it returns. Past the limit outputs are
 * ordinary arrays instead, so such a loop slows down rather than running out of memory, and the shared
 * memory keeps room for the arenas of calls on it (above the blocks).
 */
let residentLimit = (SHARED_MAX_PAGES * PAGE) / 2;

/** For tests: set the limit on the resident blocks' span (bytes); returns the previous one. */
export function setResidentLimit(bytes: number): number {
  const was = residentLimit;
  residentLimit = bytes;
  return was;
}

/** A free block of `bytes` (first fit, else at the top, growing the memory), or −1 past the limit. */
function takeBlock(memory: WebAssembly.Memory, bytes: number): number {
  for (let i = 0; i < freeExtents.length; i += 2) {
    const start = freeExtents[i];
    if (freeExtents[i + 1] - start < bytes) continue;
    freeExtents[i] = start + bytes;
    if (freeExtents[i] === freeExtents[i + 1]) freeExtents.splice(i, 2);
    return start;
  }
  const ptr = heapTop;
  const end = ptr + bytes;
  if (end - ARENA_BASE > residentLimit) return -1;
  const size = memory.buffer.byteLength;
  if (end > size) {
    try {
      memory.grow(Math.ceil((Math.max(end, size + (size >> 2)) - size) / PAGE));
    } catch {
      try {
        memory.grow(Math.ceil((end - size) / PAGE));
      } catch {
        return -1; // the engine allows no more: an ordinary array, as past the limit
      }
    }
  }
  heapTop = end;
  return ptr;
}

function freeBlock(ptr: number, bytes: number): void {
  let end = ptr + bytes;
  let start = ptr;
  let i = 0;
  while (i < freeExtents.length && freeExtents[i] < start) i += 2;
  // coalesce with the extent before (ending at start) and the one after (starting at end)
  if (i > 0 && freeExtents[i - 1] === start) {
    start = freeExtents[i - 2];
    i -= 2;
    freeExtents.splice(i, 2);
  }
  if (i < freeExtents.length && freeExtents[i] === end) {
    end = freeExtents[i + 1];
    freeExtents.splice(i, 2);
  }
  if (end === heapTop) heapTop = start;
  else freeExtents.splice(i, 0, start, end);
}

/** Bytes the resident blocks span now (for tests). */
export function residentBytes(): number {
  return heapTop - ARENA_BASE;
}

/** Bytes of the resident blocks in use: their span less the free extents in it (for tests). */
export function residentLiveBytes(): number {
  let free = 0;
  for (let i = 0; i < freeExtents.length; i += 2) free += freeExtents[i + 1] - freeExtents[i];
  return residentBytes() - free;
}

/**
 * A resident copy of a (float32), for an array the kernels read and write on every training step (a
 * parameter, its gradient): a itself when it is resident already, null when resident arrays cannot be made
 * (no shared memory, past the limit).
 */
export function residentCopy(a: Float32Array): Float32Array | null {
  if (blocks.has(a)) return a;
  if (!residentReady()) return null;
  const r = residentArray(Float32Array, a.length);
  r?.set(a);
  return r;
}
