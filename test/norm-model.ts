// A small CNN that runs both segment normalisations (GroupNorm after a convolution, LayerNorm after a dense
// layer): shared by the group-norm kernel tests, their allocation profile and the benchmark.

import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Sequential } from "../src/nn/sequential.ts";

/** Conv2D(8, 5×5, same) → GroupNorm(2) → ReLU → MaxPool2D(2) → Flatten → Dense(32) → LayerNorm → ReLU → Dense. */
export function normModel(inputShape: [number, number, number], classes: number, seed: number): Sequential {
  return new Sequential(
    [
      new Conv2D({ outChannels: 8, kernelSize: 5, padding: "same" }),
      new GroupNorm({ groups: 2 }),
      new ReLU(),
      new MaxPool2D({ kernelSize: 2 }),
      new Flatten(),
      new Dense({ outFeatures: 32 }),
      new LayerNorm({}),
      new ReLU(),
      new Dense({ outFeatures: classes }),
    ],
    { inputShape, seed },
  );
}
