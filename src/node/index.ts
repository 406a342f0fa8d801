// `handprop/node`: everything in `handprop` plus what needs Node's file system — model folders,
// TF.js and ONNX files, IDX files (raw or gzipped), MNIST from disk, atomic writes.

/**
 * The Node entry: everything in `handprop`, plus model folders, TF.js and ONNX files, IDX files,
 * MNIST from disk and atomic writes.
 * @packageDocumentation
 * @module handprop/node
 */
export * from "../index.ts";
export { writeFileAtomic, writeFilesAtomic, writeFilesCommitted, finishPendingCommit } from "./atomic.ts";
export { readRegularFile, FileReadError, type ReadLimits } from "./safe-read.ts";
export { lockFolder, LockError, type FolderLock, type LockInfo } from "./lock.ts";
export { saveModel, loadModel, readManifest, cleanModelFolder, type LoadOptions } from "./model-io.ts";
export { readIdx, writeIdx, decodeIdxFile } from "./idx.ts";
export { saveTfjsModel, loadTfjsModel } from "./tfjs.ts";
export { saveOnnxModel } from "./onnx.ts";
export { loadMnist, defaultMnistDir, locateMnistFiles } from "./mnist.ts";
