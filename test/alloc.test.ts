// Steady-state training allocates nothing per step: V8's sampling heap profiler over LeNet-5 training
// steps (test/alloc-profile.ts) attributes at most a small budget per step to handprop's source files;
// likewise for a model of depthwise and grouped convolutions, and for mobilenet-mini and resnet-mini.
// Before this was measured, a step allocated ≈ 1 MB (a findIndex over every weight boxed each float)
// and ≈ 20 kB of small arrays, iterators and option objects.

import { test } from "node:test";
import { assertAllocationBudget } from "./kernel-helpers.ts";

// What remains: trainStep's returned {loss, correct}, float64 arguments boxed at calls the JIT does not
// inline (the optimizers' step sizes, ≈ 20 per step), and sampling noise. The frames that call into wasm
// are left out (engine allocations during long wasm calls: see AllocationSite.engine). Each measurement
// runs in a fresh process, so that another test's JIT state (a function deoptimized there) cannot leak in.
// The budget is 2 kB: a real per-step allocation (one array per layer, one view per call) costs several
// kB and fails it, while the sampled remainder measured 400–1,040 B on a loaded 2-core machine.
const BUDGET = 2048;

/** Profile training steps in a fresh process (test/alloc-profile.ts with these arguments) and check the budget. */
function assertWithinBudget(args: readonly string[]): void {
  const profile = ["--steps", "40", "--windows", "3", "--interval", "128", "--json"];
  assertAllocationBudget("test/alloc-profile.ts", [...args, ...profile], BUDGET);
}

for (const [threads, optimizer] of [
  [1, "adam"],
  [2, "sgd"],
] as const) {
  test(`LeNet-5 training (wasm, ${threads} thread(s), ${optimizer}) allocates ≤ ${BUDGET} B per step in handprop`, () => {
    assertWithinBudget(["--threads", String(threads), "--optimizer", optimizer, "--batch", "16", "--warmup", "300"]);
  });
}

// test/alloc-profile.ts's "grouped-convs": Conv2D, DepthwiseConv2D (multiplier 2, stride 2), Conv2D with groups 4
test(`depthwise and grouped convolutions (wasm, 2 threads) allocate ≤ ${BUDGET} B per step in handprop`, () => {
  assertWithinBudget(["--model", "grouped-convs", "--threads", "2", "--batch", "16", "--warmup", "300"]);
});

// the zoo's BatchNorm models: mobilenet-mini (depthwise convolutions, GlobalAvgPool2D) and resnet-mini (a graph
// Model: fan-out gradients summed, Add merges); before these were measured they allocated ≈ 31 and 38 kB per step
test(`mobilenet-mini training (wasm, 2 threads) allocates ≤ ${BUDGET} B per step in handprop`, () => {
  assertWithinBudget(["--model", "mobilenet-mini", "--threads", "2", "--batch", "8", "--warmup", "300"]);
});

test(`resnet-mini training (wasm, 1 thread) allocates ≤ ${BUDGET} B per step in handprop`, () => {
  assertWithinBudget(["--model", "resnet-mini", "--threads", "1", "--batch", "2", "--warmup", "300"]);
});
