// The TensorFlow.js Layers format, both ways: a Sequential model ⇄ model.json (a Keras Sequential
// topology with snake_case configs) + weights.bin (float32 little-endian, in manifest order).
//
// Layout. TF.js is channels-last: images are NHWC where handprop is NCHW, so weights are permuted on
// the way out and back in:
//   Conv2D kernel   handprop (out, in, kh, kw)  ⇄  TF [kh, kw, in, out]
//   Dense kernel    handprop (in, out)          =  TF [in, out], except after a Flatten of an image:
//                   handprop flattens (C, H, W) as f = c·H·W + h·W + w, TF flattens (H, W, C) as
//                   f' = h·W·C + w·C + c, so row f' of TF's kernel is row f of handprop's. The same
//                   permutation applies to a BatchNorm1D's per-feature parameters between the two.
//
// Layer mapping (handprop → TF.js; the import accepts the same and a few more, see fromTfjsArtifacts):
//   Conv2D           Conv2D; padding "same"/"valid" map directly, explicit padding that equals TF's
//                    "same" for the layer's input size becomes "same", any other explicit padding a
//                    ZeroPadding2D before a "valid" Conv2D. Dilation → dilation_rate.
//   MaxPool2D        MaxPooling2D: padding 0 → "valid"; padding equal to TF's "same" windows → "same";
//                    anything else is rejected (zero padding would change the max of negative windows).
//   AvgPool2D        AveragePooling2D: padding 0 → "valid"; countIncludePad false with "same" windows →
//                    "same" (TF leaves padded cells out of the divisor); countIncludePad true →
//                    ZeroPadding2D + "valid" (zeros counted, divisor kh·kw); else rejected.
//   GlobalAvgPool2D  GlobalAveragePooling2D
//   BatchNorm1D/2D   BatchNormalization (axis −1, epsilon, momentum = 1 − handprop's: Keras weighs the
//                    OLD running value; gamma/beta/moving_mean/moving_variance)
//   Dropout          Dropout (rate)
//   ReLU/Tanh/Sigmoid/Softmax   Activation (Softmax only over TF's last axis: features or channels)
//   LeakyReLU        LeakyReLU (alpha)
// Activations stay separate layers, so handprop → TF.js → handprop rebuilds the same layer list.
// The newer layers (depthwise/separable/transposed convolutions, upsampling, LayerNorm, Reshape, Permute, …)
// map both ways too: tfjs/export.ts and tfjs/import.ts say how, tfjs/layout.ts holds the axis bookkeeping.
// Weights are written as float32 (a float64 model is rounded); the round trip of a float32 model is exact.
//
// The code, by responsibility: tfjs/types.ts (the JSON shapes, TfjsFormatError), tfjs/layout.ts (the
// permutations above), tfjs/export.ts, tfjs/weights.ts (the weights manifest), tfjs/reader.ts (one Keras
// layer's config), tfjs/import.ts (per layer family), tfjs/functional.ts (functional graphs).

export type {
  KerasLayerJson,
  KerasModelTopology,
  TfjsArtifacts,
  TfjsExportOptions,
  TfjsModelJson,
  TfjsWeightSpec,
  TfjsWeightsGroup,
} from "./tfjs/types.ts";
export { TfjsFormatError } from "./tfjs/types.ts";
export { toTfjsArtifacts } from "./tfjs/export.ts";
export { fromTfjsArtifacts } from "./tfjs/import.ts";
