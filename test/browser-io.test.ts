// Browser persistence: the one-file container round trip and its errors, IndexedDB through a minimal
// in-memory fake, and loadModelFromUrl (container or model folder) with size bounds, through a fake fetch.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { buildModel } from "../src/nn/models.ts";
import { Adam } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import type { Sequential } from "../src/nn/sequential.ts";
import { serializeModel } from "../src/io/model-format.ts";
import {
  decodeModelFile,
  encodeModelFile,
  loadModelFromIndexedDB,
  loadModelFromUrl,
  modelFromFile,
  modelToFile,
  saveModelToIndexedDB,
} from "../src/io/browser.ts";

function trained(): { model: Sequential; optimizer: Adam; x: NDArray } {
  const model = buildModel("cnn-small", { seed: 3 });
  const optimizer = new Adam({ lr: 1e-3 });
  const rng = new RandomState(1);
  const x = new NDArray(
    Float32Array.from({ length: 4 * 784 }, () => rng.random()),
    [4, 1, 28, 28],
  );
  model.trainBatch(x, [1, 2, 3, 4], new SoftmaxCrossEntropy(), optimizer);
  return { model, optimizer, x };
}

const { model, optimizer, x } = trained();
const expected = model.predict(x).data;

test("container round trip: same predictions bit for bit, optimizer and training metadata back", () => {
  const bytes = modelToFile(model, { optimizer, training: { epochs: 1 } });
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 8)), "HANDPROP");
  const loaded = modelFromFile(bytes);
  assert.deepEqual(loaded.model.predict(x).data, expected);
  assert.deepEqual(loaded.optimizer!.stateDict(), optimizer.stateDict());
  assert.deepEqual(loaded.training, { epochs: 1 });
  const plain = decodeModelFile(modelToFile(model));
  assert.equal(plain.optimizer, undefined);
});

test("container errors name the file, the offsets and what is wrong", () => {
  const bytes = modelToFile(model, { optimizer });
  const short = bytes.subarray(0, bytes.length - 1);
  assert.throws(() => modelFromFile(short, "m.handprop"), /m\.handprop: truncated: the header \(offsets 12–23\)/);
  const longer = new Uint8Array(bytes.length + 3);
  longer.set(bytes);
  assert.throws(() => modelFromFile(longer), /trailing bytes: .* = \d+ bytes, the file has \d+/);
  const jsonText = new TextEncoder().encode('{"format": "handprop-model"}  padding');
  assert.throws(() => modelFromFile(jsonText), /not a handprop model file: bytes 0–7 are 7b 22/);
  assert.throws(() => modelFromFile(bytes.subarray(0, 10)), /truncated: 10 bytes, less than the 24-byte header/);
  const version = bytes.slice();
  version[8] = 2;
  assert.throws(() => modelFromFile(version), /container version 2 at byte offset 8 is not supported/);
  const corrupt = bytes.slice();
  const json = new DataView(bytes.buffer).getUint32(12, true);
  corrupt[24 + json + 5] ^= 0xff;
  assert.throws(() => modelFromFile(corrupt, "m.handprop"), /m\.handprop \(weights\): checksum mismatch/);
  assert.throws(() => modelFromFile(bytes, "m", 100), /exceeds the limit of 100/);
  const s = serializeModel(model);
  assert.deepEqual(decodeModelFile(encodeModelFile(s)).weights, s.weights);
});

// ---------------------------------------------------------------------------------------------
// A minimal in-memory IndexedDB: open (with upgradeneeded), object stores, put/get in transactions.

type Handler = (() => void) | null;

class FakeRequest {
  result: unknown;
  error: DOMException | null = null;
  onsuccess: Handler = null;
  onerror: Handler = null;
  onupgradeneeded: Handler = null;
}

class FakeTransaction {
  oncomplete: Handler = null;
  onerror: Handler = null;
  onabort: Handler = null;
  error: DOMException | null = null;
  private pending = 0;
  constructor(private readonly db: FakeDatabase) {}
  objectStore(name: string) {
    const map = this.db.stores.get(name)!;
    const run = (f: () => unknown): FakeRequest => {
      const request = new FakeRequest();
      this.pending++;
      setTimeout(() => {
        request.result = f();
        request.onsuccess?.();
        if (--this.pending === 0) setTimeout(() => this.oncomplete?.(), 0);
      }, 0);
      return request;
    };
    return {
      put: (value: unknown, key: string) => run(() => (map.set(key, structuredClone(value)), key)),
      get: (key: string) => run(() => structuredClone(map.get(key))),
    };
  }
}

class FakeDatabase {
  readonly stores = new Map<string, Map<string, unknown>>();
  readonly objectStoreNames = { contains: (name: string) => this.stores.has(name) };
  createObjectStore(name: string): void {
    this.stores.set(name, new Map());
  }
  transaction(name: string): FakeTransaction {
    if (!this.stores.has(name)) throw new DOMException(`no store ${name}`, "NotFoundError");
    return new FakeTransaction(this);
  }
  close(): void {
    /* nothing held */
  }
}

class FakeIndexedDB {
  readonly databases = new Map<string, FakeDatabase>();
  open(name: string): FakeRequest {
    const request = new FakeRequest();
    setTimeout(() => {
      let db = this.databases.get(name);
      const fresh = db === undefined;
      db ??= new FakeDatabase();
      this.databases.set(name, db);
      request.result = db;
      if (fresh) request.onupgradeneeded?.();
      request.onsuccess?.();
    }, 0);
    return request;
  }
}

test("IndexedDB: save, load with the same predictions, overwrite, and clear errors", async () => {
  const fake = new FakeIndexedDB();
  const indexedDB = fake as unknown as IDBFactory;
  await saveModelToIndexedDB(model, "lenet", { indexedDB, meta: { optimizer } });
  const loaded = await loadModelFromIndexedDB("lenet", { indexedDB });
  assert.deepEqual(loaded.model.predict(x).data, expected);
  assert.deepEqual(loaded.optimizer!.stateDict(), optimizer.stateDict());

  const other = buildModel("mlp", { seed: 1 });
  await saveModelToIndexedDB(other, "lenet", { indexedDB });
  assert.equal((await loadModelFromIndexedDB("lenet", { indexedDB })).model.layers.length, other.layers.length);

  const missing = /no model saved under "nope" in IndexedDB "handprop"\/"models"/;
  await assert.rejects(loadModelFromIndexedDB("nope", { indexedDB }), missing);
  fake.databases.get("handprop")!.stores.get("models")!.set("junk", { hello: 1 });
  await assert.rejects(loadModelFromIndexedDB("junk", { indexedDB }), /"junk": not a handprop model record/);
  const record = fake.databases.get("handprop")!.stores.get("models")!.get("lenet") as { container: ArrayBuffer };
  new Uint8Array(record.container)[100] ^= 1; // inside model.json or weights: caught by the usual checks
  await assert.rejects(loadModelFromIndexedDB("lenet", { indexedDB }), /IndexedDB "handprop"\/"models"\/"lenet"/);
  await assert.rejects(loadModelFromIndexedDB("x", { indexedDB: undefined }), /IndexedDB is not available here/);
});

// ---------------------------------------------------------------------------------------------

function fakeFetch(files: Record<string, Uint8Array>, opts: { chunked?: boolean } = {}) {
  const requested: string[] = [];
  const fetch = (url: string): Promise<Response> => {
    requested.push(url);
    const body = files[url];
    if (body === undefined) return Promise.resolve(new Response("not found", { status: 404, statusText: "Not Found" }));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < body.length; i += 1000) controller.enqueue(body.slice(i, i + 1000));
        controller.close();
      },
    });
    const headers: Record<string, string> = opts.chunked ? {} : { "content-length": String(body.length) };
    return Promise.resolve(new Response(stream, { status: 200, headers }));
  };
  return { fetch, requested };
}

test("loadModelFromUrl: a container, or a folder's model.json with its weights beside it; bounded", async () => {
  const container = modelToFile(model);
  const a = fakeFetch({ "https://h.test/m.handprop": container });
  const fromContainer = await loadModelFromUrl("https://h.test/m.handprop", { fetch: a.fetch });
  assert.deepEqual(fromContainer.model.predict(x).data, expected);

  const s = serializeModel(model, { optimizer });
  const b = fakeFetch({
    "https://h.test/dir/model.json": new TextEncoder().encode(s.json),
    "https://h.test/dir/weights.bin": s.weights,
    "https://h.test/dir/optimizer.bin": s.optimizer!,
  });
  const loaded = await loadModelFromUrl("https://h.test/dir/model.json", { fetch: b.fetch });
  assert.deepEqual(loaded.model.predict(x).data, expected);
  const beside = ["model.json", "weights.bin", "optimizer.bin"].map((f) => `https://h.test/dir/${f}`);
  assert.deepEqual(b.requested, beside);

  const small = { maxBytes: 1000 };
  const url = "https://h.test/m.handprop";
  const declared = loadModelFromUrl(url, { ...small, fetch: a.fetch });
  await assert.rejects(declared, /Content-Length \d+ exceeds the limit of 1000/);
  const chunked = fakeFetch({ [url]: container }, { chunked: true });
  const counted = loadModelFromUrl(url, { ...small, fetch: chunked.fetch });
  await assert.rejects(counted, /the response exceeds the limit of 1000 bytes/);
  const missing = loadModelFromUrl("https://h.test/missing", { fetch: a.fetch });
  await assert.rejects(missing, /h\.test\/missing: HTTP 404 Not Found/);
  // A weights file longer than model.json says is refused before or while reading, by either bound.
  const longer = new Uint8Array(s.weights.length + 5000);
  const json = new TextEncoder().encode(s.json);
  const tooLong = /weights\.bin: .*exceeds the limit of \d+/;
  for (const chunkedBody of [false, true]) {
    const files = { "https://h.test/dir/model.json": json, "https://h.test/dir/weights.bin": longer };
    const c = fakeFetch(files, { chunked: chunkedBody });
    await assert.rejects(loadModelFromUrl("https://h.test/dir/model.json", { fetch: c.fetch }), tooLong);
  }
});
