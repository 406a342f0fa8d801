// Flatten: (N, d1, d2, …) → (N, d1·d2·…), keeping the row-major (C-order) element order.
//
// For an NCHW image that order is channel-major: feature f = c·H·W + h·W + w, as torch.flatten(x, 1).
// Keras/TF.js Flatten on channels-last (NHWC) tensors orders features h·W·C + w·C + c instead, so a Dense
// layer after Flatten must have its weight rows permuted when a model is exported to or imported from a
// channels-last framework.

import { formatShape, shapeSize } from "../nd/ndarray.ts";
import { ShapeError, type LayerConfig } from "./layer.ts";
import { RowMajorReshape } from "./reshape.ts";

/** y = reshape(x, (N, prod)), a copy (RowMajorReshape). */
export class Flatten extends RowMajorReshape {
  readonly type = "Flatten";
  protected readonly minRank = 2;
  protected readonly expectedShape = "(N, ...) with at least 2 axes";

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1)
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, ...) with at least one axis after the batch, got samples of shape ${formatShape(inputShape)}`,
      );
    return [shapeSize(inputShape)];
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}
