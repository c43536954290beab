// Translates a trained tf.layers recommender (the sample NeuMF / two-tower / DeepFM, or any
// functional model made of the same standard layers) into an ONNX graph, so that the same
// trained weights exist in both formats.
//
// Conventions: id inputs become int64 [batch] (TF.js: int32 [batch, 1]); a `fields` input
// becomes int64 [batch, numFields]; the output is `score` float [batch, 1]. Embedding lookups
// are Gather on the table, which yields [batch, dim] directly, so the Flatten after an
// Embedding becomes nothing. Initializers are named `<layer>/<weight>` (embeddings, kernel,
// bias) whatever suffix TF.js gave its variables.

import * as tf from '@tensorflow/tfjs';
import { onnx } from 'onnx-proto';
import { OnnxGraphBuilder, writeOnnxFile } from '../model/onnx/build.js';
import { ExternalDataOptions } from '../model/onnx/splice.js';

/** What a layer's output is in the ONNX graph. */
type Value =
  /** 1-D int64 ids [batch] */
  | { form: 'ids'; name: string }
  /** a [batch, n] float matrix */
  | { form: 'matrix'; name: string }
  /** int64 [batch, F] fields, viewed by TF.js as [batch, F, 1, 1] (Reshape before Cropping2D) */
  | { form: 'fields'; name: string; count: number };

export interface LayersToOnnxOptions {
  graphName?: string;
  /** default 17 */
  opset?: number;
  metadata?: Record<string, string>;
  /** the integer type of an input, by name (default int64): a student keeps its teacher's int32 ids */
  inputDtypes?: Record<string, 'int32' | 'int64'>;
}

interface LayerLike {
  name: string;
  getClassName(): string;
  getConfig(): Record<string, unknown>;
  getWeights(): tf.Tensor[];
  inboundNodes: Array<{ inboundLayers: LayerLike[] }>;
}

function weightData(t: tf.Tensor): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`weight of dtype ${t.dtype} is not supported`);
  return Float32Array.from(t.dataSync() as Float32Array);
}

/** The ONNX ModelProto of a tf.layers functional model with one output. */
export function layersModelToOnnx(model: tf.LayersModel, opts: LayersToOnnxOptions = {}): onnx.ModelProto {
  if (model.outputs.length !== 1) throw new Error(`to-onnx: the model has ${model.outputs.length} outputs, expected 1`);
  const b = new OnnxGraphBuilder({
    graphName: opts.graphName ?? model.name,
    opset: opts.opset ?? 17,
    producer: 'prunescope',
    docString: `converted from tf.layers model '${model.name}'`,
    metadata: { source_format: 'tfjs-layers', ...(opts.metadata ?? {}) },
  });
  const values = new Map<string, Value>();
  const constants = new Map<string, string>();
  const intConst = (v: number[] | number): string => {
    const key = JSON.stringify(v);
    let name = constants.get(key);
    if (!name) {
      name = `const_i64_${constants.size}`;
      const arr = Array.isArray(v) ? v : [v];
      b.initializer(name, 'int64', Array.isArray(v) ? [arr.length] : [], BigInt64Array.from(arr.map((x) => BigInt(x))));
      constants.set(key, name);
    }
    return name;
  };

  const inputNames = new Set(model.inputNames);
  for (const [i, name] of model.inputNames.entries()) {
    const shape = model.inputs[i].shape;
    const dtype = opts.inputDtypes?.[name] ?? 'int64';
    if (shape.length === 2 && shape[1] === 1) {
      b.input(name, dtype, ['batch']);
      values.set(name, { form: 'ids', name });
    } else if (shape.length === 2 && typeof shape[1] === 'number') {
      b.input(name, dtype, ['batch', shape[1]]);
      values.set(name, { form: 'matrix', name });
    } else {
      throw new Error(`to-onnx: input '${name}' has shape [${shape.join(',')}], expected [batch, n]`);
    }
  }

  const inputsOf = (layer: LayerLike): Value[] => {
    if (layer.inboundNodes.length !== 1) {
      throw new Error(`to-onnx: layer '${layer.name}' is applied ${layer.inboundNodes.length} times; shared layers are not supported`);
    }
    return layer.inboundNodes[0].inboundLayers.map((l) => {
      const v = values.get(l.name);
      if (!v) throw new Error(`to-onnx: layer '${layer.name}' reads '${l.name}', which was not converted`);
      return v;
    });
  };
  const matrix = (v: Value, layer: string): string => {
    if (v.form !== 'matrix') throw new Error(`to-onnx: layer '${layer}' expects a [batch, n] float input`);
    return v.name;
  };
  const chain = (op: 'Add' | 'Mul', names: string[], out: string): void => {
    let acc = names[0];
    for (let i = 1; i < names.length; i++) {
      const o = i === names.length - 1 ? out : `${out}/${op.toLowerCase()}_${i}`;
      b.node(op, [acc, names[i]], [o], {}, { name: `${out}/${op}_${i}` });
      acc = o;
    }
  };
  const activation = (act: unknown, x: string, layer: string): string => {
    const a = String(act ?? 'linear');
    if (a === 'linear') return x;
    const op = a === 'relu' ? 'Relu' : a === 'sigmoid' ? 'Sigmoid' : a === 'tanh' ? 'Tanh' : undefined;
    if (!op) throw new Error(`to-onnx: activation '${a}' of layer '${layer}' is not supported`);
    const out = `${layer}/${a}`;
    b.node(op, [x], [out], {}, { name: `${layer}/${op}` });
    return out;
  };

  for (const layer of model.layers as unknown as LayerLike[]) {
    const cls = layer.getClassName();
    const name = layer.name;
    if (cls === 'InputLayer') {
      if (!inputNames.has(name)) throw new Error(`to-onnx: input layer '${name}' is not a model input`);
      continue;
    }
    const ins = inputsOf(layer);
    const cfg = layer.getConfig();
    const w = layer.getWeights();
    switch (cls) {
      case 'Embedding': {
        const ids = ins[0];
        if (ids.form !== 'ids') throw new Error(`to-onnx: embedding '${name}' must read an id input or a selected field`);
        const table = w[0];
        b.initializer(`${name}/embeddings`, 'float32', table.shape, weightData(table));
        const out = `${name}/lookup`;
        b.node('Gather', [`${name}/embeddings`, ids.name], [out], { axis: 0 }, { name: `${name}/Gather` });
        values.set(name, { form: 'matrix', name: out });
        break;
      }
      case 'Flatten': {
        // after a Gather, the value is [batch, dim] already
        if (ins[0].form !== 'matrix') throw new Error(`to-onnx: flatten '${name}' must follow an embedding`);
        values.set(name, ins[0]);
        break;
      }
      case 'Reshape': {
        const target = cfg.targetShape as number[];
        const src = ins[0];
        if (src.form !== 'matrix' || !model.inputNames.includes(src.name) || target.length !== 3 || target[1] !== 1 || target[2] !== 1) {
          throw new Error(`to-onnx: reshape '${name}' is only supported as the [F,1,1] view of a fields input`);
        }
        values.set(name, { form: 'fields', name: src.name, count: target[0] });
        break;
      }
      case 'Cropping2D': {
        const src = ins[0];
        const crop = cfg.cropping as [[number, number], [number, number]];
        if (src.form !== 'fields' || crop[1][0] !== 0 || crop[1][1] !== 0 || crop[0][0] + crop[0][1] !== src.count - 1) {
          throw new Error(`to-onnx: cropping '${name}' is only supported as the selection of one field`);
        }
        const out = `${name}/ids`;
        b.node('Gather', [src.name, intConst(crop[0][0])], [out], { axis: 1 }, { name: `${name}/Gather` });
        values.set(name, { form: 'ids', name: out });
        break;
      }
      case 'Dense': {
        const x = matrix(ins[0], name);
        const [kernel, bias] = w;
        b.initializer(`${name}/kernel`, 'float32', kernel.shape, weightData(kernel));
        let y = `${name}/matmul`;
        b.node('MatMul', [x, `${name}/kernel`], [y], {}, { name: `${name}/MatMul` });
        if (bias) {
          b.initializer(`${name}/bias`, 'float32', bias.shape, weightData(bias));
          const yb = `${name}/biased`;
          b.node('Add', [y, `${name}/bias`], [yb], {}, { name: `${name}/Add` });
          y = yb;
        }
        values.set(name, { form: 'matrix', name: activation(cfg.activation, y, name) });
        break;
      }
      case 'Activation':
        values.set(name, { form: 'matrix', name: activation(cfg.activation, matrix(ins[0], name), name) });
        break;
      case 'Concatenate': {
        const axis = cfg.axis as number;
        if (axis !== -1 && axis !== 1) throw new Error(`to-onnx: concatenate '${name}' on axis ${axis} is not supported`);
        const out = `${name}/out`;
        b.node('Concat', ins.map((v) => matrix(v, name)), [out], { axis: 1 }, { name: `${name}/Concat` });
        values.set(name, { form: 'matrix', name: out });
        break;
      }
      case 'Multiply':
      case 'Add': {
        const out = `${name}/out`;
        chain(cls === 'Add' ? 'Add' : 'Mul', ins.map((v) => matrix(v, name)), out);
        values.set(name, { form: 'matrix', name: out });
        break;
      }
      case 'Dot': {
        const axes = cfg.axes;
        const ok = (axes === 1 || axes === -1 || (Array.isArray(axes) && axes.every((a) => a === 1 || a === -1))) && !cfg.normalize;
        if (!ok || ins.length !== 2) throw new Error(`to-onnx: dot '${name}' is only supported on axis 1 of two [batch, n] inputs, unnormalised`);
        const prod = `${name}/product`;
        b.node('Mul', [matrix(ins[0], name), matrix(ins[1], name)], [prod], {}, { name: `${name}/Mul` });
        const out = `${name}/out`;
        b.node('ReduceSum', [prod, intConst([1])], [out], { keepdims: 1 }, { name: `${name}/ReduceSum` });
        values.set(name, { form: 'matrix', name: out });
        break;
      }
      default:
        throw new Error(`to-onnx: layer '${name}' of class ${cls} is not supported`);
    }
  }

  const outLayer = model.outputLayers[0].name;
  const last = values.get(outLayer);
  if (!last || last.form !== 'matrix') throw new Error(`to-onnx: output layer '${outLayer}' did not convert to a matrix`);
  b.node('Identity', [last.name], ['score'], {}, { name: 'score/Identity' });
  b.output('score', 'float32', ['batch', model.outputs[0].shape[1] as number]);
  return b.toModelProto();
}

/** Converts and writes `outPath` (atomically; weights inline unless externalData is given). */
export async function exportLayersModelToOnnx(
  model: tf.LayersModel,
  outPath: string,
  opts: LayersToOnnxOptions & { externalData?: ExternalDataOptions } = {},
): Promise<void> {
  const proto = layersModelToOnnx(model, opts);
  await writeOnnxFile(outPath, proto, opts.externalData ? { externalData: opts.externalData } : undefined);
}
