// handprop's public API, browser-safe: no module reachable from here imports a `node:` built-in or a
// third-party package. The file-system parts (model folders, IDX files, MNIST from disk, atomic
// writes) are in `handprop/node` (src/node/index.ts), which re-exports all of this too.

/**
 * The browser-safe entry: arrays, RandomState, signal, layers, losses, optimizers, models, gradcheck,
 * kernels and threads, and the in-memory codecs. `handprop/node` adds the file system.
 * @packageDocumentation
 * @module handprop
 */
export { NDArray, type DType, type TypedArray, type Nested } from "./nd/ndarray.ts";
export * from "./nd/ops.ts";
export { RandomState, type RandomStateState } from "./nd/random.ts";
export { convolve2d, correlate2d, type ConvMode } from "./nd/signal.ts";
export { formatArray, pyRepr } from "./nd/format.ts";

export { Layer, ShapeError, type Param, type LayerConfig, type ForwardOptions } from "./nn/layer.ts";
export { Conv2D, samePadding, type Conv2DOptions, type Conv2DPadding } from "./nn/conv.ts";
export { Dense, type DenseOptions } from "./nn/dense.ts";
export { Flatten } from "./nn/flatten.ts";
export { MaxPool2D, AvgPool2D, GlobalAvgPool2D, type Pool2DOptions, type AvgPool2DOptions } from "./nn/pool.ts";
export { Dropout, type DropoutOptions } from "./nn/dropout.ts";
export { BatchNorm1D, BatchNorm2D, type BatchNormOptions } from "./nn/batchnorm.ts";
export {
  ReLU,
  LeakyReLU,
  Tanh,
  Sigmoid,
  Softmax,
  sigmoid,
  type LeakyReLUOptions,
  type SoftmaxOptions,
} from "./nn/activations.ts";
export * from "./nn/losses.ts";
export * from "./nn/optim.ts";
export * from "./nn/schedules.ts";
export { initialize, type InitName } from "./nn/init.ts";
export {
  Sequential,
  TrainingError,
  type FitOptions,
  type History,
  type Logs,
  type Callbacks,
} from "./nn/sequential.ts";
export { layerFromConfig, sequentialFromConfig, LAYER_TYPES } from "./nn/registry.ts";
export {
  gradcheck,
  gradcheckLoss,
  relError,
  type GradcheckOptions,
  type GradcheckResult,
  type GradcheckLossOptions,
} from "./nn/gradcheck.ts";
export { runGradcheckSuite, summarize } from "./nn/checks.ts";
export {
  runArticle,
  articleReport,
  articleInitialWeights,
  articleForward,
  articleGradients,
  articleStep,
  articleEvaluate,
  type ArticleResult,
  type ArticleOptions,
  type ForwardTrace,
  type StepTrace,
} from "./examples/article.ts";
export { runArticleWithLayers, articleModel } from "./examples/article-layers.ts";
export {
  toTfjsArtifacts,
  fromTfjsArtifacts,
  TfjsFormatError,
  type TfjsArtifacts,
  type TfjsModelJson,
  type TfjsWeightSpec,
  type TfjsExportOptions,
} from "./io/tfjs.ts";
export { toOnnx, ONNX_OPSET, ONNX_IR_VERSION, type OnnxExportOptions } from "./io/onnx.ts";
export { decodeIdx, encodeIdx, isGzip, IdxError, type IdxArray, type IdxData, type IdxType } from "./io/idx.ts";
export {
  serializeModel,
  deserializeModel,
  parseManifest,
  ModelFormatError,
  crc32,
  MODEL_FORMAT,
  MODEL_FORMAT_VERSION,
  type ModelManifest,
  type SaveMeta,
  type SerializedModel,
  type LoadedModel,
} from "./io/model-format.ts";
export {
  MNIST_FILES,
  MNIST_STANDARDIZE,
  type Mnist,
  type MnistOptions,
  type Normalization,
  type Split,
} from "./data/mnist.ts";
export {
  buildModel,
  MODEL_NAMES,
  MODELS_WITH_BATCH_NORM,
  isModelName,
  DIGIT_INPUT_SHAPE,
  type ModelName,
  type BuildModelOptions,
} from "./nn/models.ts";
export {
  setBackend,
  getBackend,
  wasmAvailable,
  wasmUnavailable,
  setThreads,
  getThreads,
  threadsUnavailable,
  setConvAlgorithm,
  getConvAlgorithm,
  type BackendName,
  type ConvAlgorithm,
} from "./kernels/backend.ts";

// Types that appear in the signatures above, exported so users (and the API reference) can name them.
export type { SequentialOptions } from "./nn/sequential.ts";
export type { Differentiable, TensorCheck } from "./nn/gradcheck.ts";
export type { SuiteCheck, SuiteSummary, SuiteOptions } from "./nn/checks.ts";
export type { Size, RandomStateInput, ShuffleTarget } from "./nd/random.ts";
export type {
  Json,
  TensorEntry,
  SlotEntry,
  BinaryFileEntry,
  SerializedRandomState,
  FileNames,
} from "./io/model-format.ts";
export type { KerasModelTopology, KerasLayerJson, TfjsWeightsGroup } from "./io/tfjs.ts";
export type { BackwardOptions } from "./nn/layer.ts";
export { fdlibmExp, fdlibmTanh } from "./nd/fdlibm.ts";
export { ARTICLE_DEFAULTS, X as ARTICLE_X, Y as ARTICLE_Y } from "./examples/article.ts";
// Digit pictures → MNIST inputs (browser-safe), shared by `handprop predict` and the playground.
export {
  UNIT_SCALE,
  NormalizationError,
  validateNormalization,
  normalizationFromTraining,
  normalizePixels,
} from "./data/normalization.ts";
export {
  preprocessDigit,
  rgbaToGray,
  digitInput,
  softmax,
  topK,
  DIGIT_FRAME,
  DIGIT_BOX,
  type GrayImage,
  type DigitPixels,
} from "./data/digits.ts";
export {
  Trainer,
  trainStep,
  clipGradientsByNorm,
  clipGradientsByValue,
  type TrainerOptions,
  type TrainerState,
  type StepOptions,
  type Batch,
  type BatchSource,
  type BatchAugmenter,
  type AsyncRunOptions,
  type TrainBeginInfo,
  type Schedule,
} from "./nn/trainer.ts";
export { type FitAsyncOptions } from "./nn/sequential.ts";
export { L2Regularizer, type L2Options } from "./nn/regularizers.ts";
export {
  EarlyStopping,
  ModelCheckpoint,
  ReduceLROnPlateau,
  MetricsLogger,
  type EarlyStoppingOptions,
  type ModelCheckpointOptions,
  type CheckpointInfo,
  type ReduceLROnPlateauOptions,
  type MetricsLoggerOptions,
  type Monitor,
  type MonitorMode,
  type MonitorOptions,
  type LogField,
} from "./nn/callbacks.ts";
export {
  confusionMatrix,
  topKAccuracy,
  classificationReport,
  evaluateMetrics,
  type ClassMetrics,
  type ClassificationReport,
  type EvaluationMetrics,
  type EvaluateMetricsOptions,
} from "./nn/metrics.ts";
export {
  Augmenter,
  augmentBatch,
  augmentConfig,
  type AugmentOptions,
  type AugmentConfig,
  type ElasticOptions,
} from "./data/augment.ts";
export {
  encodeModelFile,
  decodeModelFile,
  modelToFile,
  modelFromFile,
  isModelFile,
  downloadModel,
  saveModelToIndexedDB,
  loadModelFromIndexedDB,
  loadModelFromUrl,
  CONTAINER_MAGIC,
  CONTAINER_VERSION,
  type IndexedDBOptions,
  type IndexedDBFactory,
  type LoadFromUrlOptions,
} from "./io/browser.ts";
// Layers of modern CNNs, composable models, the open layer registry (issue 13; derivation.md §5).
export { SymbolicTensor, makeParam, reuse, type GraphNode } from "./nn/layer.ts";
export {
  DepthwiseConv2D,
  SeparableConv2D,
  type DepthwiseConv2DOptions,
  type SeparableConv2DOptions,
} from "./nn/depthwise.ts";
export { Conv2DTranspose, type Conv2DTransposeOptions } from "./nn/transpose.ts";
export {
  UpSampling2D,
  ZeroPadding2D,
  type UpSampling2DOptions,
  type ZeroPadding2DOptions,
  type Interpolation,
} from "./nn/upsample.ts";
export { LayerNorm, GroupNorm, type LayerNormOptions, type GroupNormOptions } from "./nn/norm.ts";
export { GELU, SiLU, ELU, erf, type GELUOptions, type GELUApproximation, type ELUOptions } from "./nn/activations.ts";
export { Reshape, Permute, GlobalMaxPool2D, type ReshapeOptions, type PermuteOptions } from "./nn/reshape.ts";
export { MergeLayer, Add, Multiply, Concatenate, type ConcatenateOptions } from "./nn/merge.ts";
export { Input, Model, modelFromConfig, type ModelOptions, type ModelConfig } from "./nn/graph.ts";
export { type SequentialConfig } from "./nn/sequential.ts";
export {
  registerLayer,
  unregisterLayer,
  registeredLayerChecks,
  graphModelFromConfig,
  type LayerCheckFactory,
} from "./nn/registry.ts";
export { GRAPH_MODEL_FORMAT_VERSION } from "./io/model-format.ts";
// Row-wise argmax and softmax, written once (src/nd/rows.ts; softmax is also exported above from digits.ts).
export { argmax, argmaxRowsOf, softmaxRows } from "./nd/rows.ts";
export type { TypedConfig } from "./nn/config.ts";
// Types that public signatures and fields reference (kept in the API reference).
export type { AveragedMetrics } from "./nn/metrics.ts";
export type { SerializedGenerator } from "./nn/trainer.ts";
