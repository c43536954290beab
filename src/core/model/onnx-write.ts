// Moved to onnx/write.ts; kept for importers not yet moved (remove when none is left).
export { writeOnnxModel } from './onnx/write.js';
export type { OnnxTensorReplacement, WriteOnnxOptions } from './onnx/write.js';
export { nativeOf } from './onnx/splice.js';
