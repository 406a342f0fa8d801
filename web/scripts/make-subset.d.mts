// Types for make-subset.mjs (imported by web/vite.config.ts).
export declare const TRAIN_COUNT: number;
export declare const TEST_COUNT: number;
export declare const DEFAULT_OUT_DIR: string;
export declare const MNIST_DIR: string;
export declare function ensureMnistSubset(opts?: { outDir?: string; force?: boolean }): boolean;
