// Flatten: (N, d1, d2, …) → (N, d1·d2·…), keeping the row-major (C-order) element order.
//
// For an NCHW image that order is channel-major: feature f = c·H·W + h·W + w, as torch.flatten(x, 1).
// Keras/TF.js Flatten on channels-last (NHWC) tensors orders features h·W·C + w·C + c instead, so a Dense
// layer after Flatten must have its weight rows permuted when a model is exported to or imported from a
// channels-last framework.

import { formatShape, shapeSize, type NDArray } from "../nd/ndarray.ts";
import { InputShapedLayer, ShapeError, reuse, type LayerConfig } from "./layer.ts";

export class Flatten extends InputShapedLayer {
  readonly type = "Flatten";

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1)
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, ...) with at least one axis after the batch, got samples of shape ${formatShape(inputShape)}`,
      );
    return [shapeSize(inputShape)];
  }

  // y = reshape(x, (N, prod)): a copy into the layer's own buffer, so the output never aliases the input.
  forward(x: NDArray): NDArray {
    if (x.ndim < 2) this.shapeError("(N, ...) with at least 2 axes", x.shape);
    const N = x.shape[0];
    const y = (this.y = reuse(this.y, [N, shapeSize(x.shape.slice(1))], x.dtype));
    y.data.set(x.data);
    this.x = x;
    return y;
  }

  // Backward: a row-major reshape keeps every element's flat position (its Jacobian is the identity), so
  //   ∂L/∂x = reshape(dy, x.shape)
  // copied into dx so neither aliases the other.
  backward(dy: NDArray): NDArray {
    const dx = this.inputGrad(dy);
    dx.data.set(dy.data);
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}
