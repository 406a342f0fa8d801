// Entry point of the WebAssembly kernels (AssemblyScript): everything exported here becomes a wasm export.
export * from "./parallel";
export * from "./gemm";
export * from "./conv";
export * from "./pool";
export * from "./elementwise";
export * from "./augment";
export * from "./optim";
export * from "./norm";
export * from "./add";
export * from "./depthwise";
export * from "./winograd";
