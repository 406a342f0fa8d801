// `handprop/node`: everything in `handprop` plus what needs Node's file system — model folders,
// TF.js and ONNX files, IDX files (raw or gzipped), MNIST from disk, atomic writes.

/**
 * The Node entry: everything in `handprop`, plus model folders, TF.js and ONNX files, IDX files,
 * MNIST from disk and atomic writes.
 * @packageDocumentation
 * @module handprop/node
 */
export * from "../index.ts";
export { writeFileAtomic, writeFilesAtomic } from "./atomic.ts";
export { saveModel, loadModel, readManifest, type LoadOptions } from "./model-io.ts";
export { readIdx, writeIdx } from "./idx.ts";
export { saveTfjsModel, loadTfjsModel } from "./tfjs.ts";
export { saveOnnxModel } from "./onnx.ts";
export { loadMnist, defaultMnistDir, locateMnistFiles } from "./mnist.ts";
