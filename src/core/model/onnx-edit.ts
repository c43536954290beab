// Moved to onnx/edit.ts; kept for importers not yet moved (remove when none is left).
export { onnxDefaultOpset, writeEditedOnnxModel } from './onnx/edit.js';
export type { OnnxAttrValue, OnnxGraphEdit, OnnxGraphOutputSpec, OnnxInitializerSpec, OnnxNodeSpec, WriteEditedOnnxOptions } from './onnx/edit.js';
