// The linear memory the WebAssembly kernels run in: which instance a call runs on, the per-call scratch
// arena, and typed-array views of it that survive memory growth.
//
// Memory. WebAssembly code can only read its own linear memory, not JS typed arrays. The design here:
// every NDArray stays an ordinary JS Float32Array (users and the other layers see nothing new, and no
// array handed out can ever be detached), and each kernel call copies its operands into one scratch
// arena in linear memory, runs, and copies the results out. The arena is reset at the start of every
// call, so nothing is owned across calls and nothing can leak; it grows (memory.grow) to the largest
// call seen and then stays put. The copies are O(inputs + outputs) against O(outputs · K) arithmetic:
// memcpy-speed (tens of GB/s), a few percent of LeNet-5's conv layers (`bench/kernels.ts copies`
// measures it). What a backward needs (Conv2D's input) stays in JS, in the op's saved context
// (wasm-backend.ts).
//
// Growing a WebAssembly.Memory detaches the ArrayBuffer behind every typed-array view of it. No view
// leaves the adapters (wasm-ops.ts), and every view is obtained through a ViewCache, which notices a new `memory.buffer`
// (by identity) and recreates its views, so a growth during one call never invalidates the next. The
// cached views (one cache per op's context, one slot per operand) also mean the steady state allocates nothing.

import {
  PART_EXPORTS,
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
  threaded = k === null ? null : activate(k);
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
  top = ARENA_BASE;
}

/**
 * Reserve `bytes` (64-byte aligned) and return its offset, growing the memory if needed. 64 bytes of
 * slack follow each block: kernels may read a partial vector past the end of an input (conv.as).
 */
export function alloc(bytes: number): number {
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

/** Bytes of linear memory the arenas currently span (their high-water marks are the memories' sizes). */
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

/** Start a call on T threads: pick its instance (the shared one when T > 1) and reset the arena. */
export function begin(T: number): KernelExports {
  cur = T > 1 && threaded !== null ? threaded : ordinary;
  if (cur === null)
    throw new Error(`handprop: the WebAssembly kernels are unavailable: ${wasmUnavailableReason ?? "unknown reason"}`);
  resetArena();
  return cur.exports;
}
