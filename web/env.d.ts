// Compile-time constants defined in web/vite.config.ts.

/** True when web/public/models/lenet5/{model.json,weights.bin} existed at build time. */
declare const __HANDPROP_PRETRAINED__: boolean;
