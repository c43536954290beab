// Moved to onnx/build.ts; kept for importers not yet moved (remove when none is left).
export { FLOAT_ATTR_NAMES, OnnxGraphBuilder, makeAttribute, makeTensorProto, typedArrayBytes, writeOnnxFile } from './onnx/build.js';
export type { OnnxAttrValue, OnnxGraphBuilderOptions, OnnxTensorData, OnnxTensorValue } from './onnx/build.js';
export type { ExternalDataOptions } from './onnx/splice.js';
