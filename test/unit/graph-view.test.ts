import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OnnxGraphBuilder, writeOnnxFile } from '../../src/core/model/onnx/build.js';
import { readModel } from '../../src/core/model/read-model.js';
import { analyzeModel } from '../../src/core/analysis/analyze-model.js';
import { buildGraphView, repeatedRuns } from '../../src/core/analysis/graph-view.js';
import type { ModelIR } from '../../src/core/model/ir.js';
import type { ModelReport, TensorReport } from '../../src/shared/report.js';
import type { SensitivityView } from '../../src/shared/protocol.js';
import { withSensitivity } from '../../src/shared/graph-overlay.js';
import { runJobInProcess } from '../../src/core/jobs/run-job-in-process.js';
import { FIXTURE_VERSION, writeTinyFixtures } from '../fixtures/write-fixtures.js';

const BLOCKS = 6;

/** item -> Gather(table, half its rows zero) -> 6 x (MatMul, Add, Relu) -> If (two one-node branches) -> score */
async function sampleModel(dir: string): Promise<string> {
  const table = Float32Array.from({ length: 200 * 8 }, (_, i) => (Math.floor(i / 8) % 2 === 0 ? 0 : Math.sin(i) + 1.5));
  const b = new OnnxGraphBuilder({ graphName: 'g' }).input('item', 'int64', ['batch']).input('flag', 'bool', []).output('score', 'float32', ['batch', 8]);
  b.initializer('item_embedding', 'float32', [200, 8], table).node('Gather', ['item_embedding', 'item'], ['h0'], {}, { name: 'item_embedding/Gather' });
  for (let i = 0; i < BLOCKS; i++) {
    b.initializer(`w${i}`, 'float32', [8, 8], Float32Array.from({ length: 64 }, (_, k) => (k % 4 === 0 ? 0 : Math.cos(i + k))));
    b.initializer(`b${i}`, 'float32', [8], Float32Array.from({ length: 8 }, (_, k) => k / 10));
    b.node('MatMul', [`h${i}`, `w${i}`], [`m${i}`], {}, { name: `mlp${i}/MatMul` })
      .node('Add', [`m${i}`, `b${i}`], [`a${i}`], {}, { name: `mlp${i}/Add` })
      .node('Relu', [`a${i}`], [`h${i + 1}`], {}, { name: `mlp${i}/Relu` });
  }
  const branch = (name: string) => ({ name, node: [{ name: `${name}/Identity`, opType: 'Identity', input: [`h${BLOCKS}`], output: [`${name}_out`] }], output: [{ name: `${name}_out` }] });
  b.node('If', ['flag'], ['score'], { then_branch: { graph: branch('then') }, else_branch: { graph: branch('else') } }, { name: 'choose' });
  const file = join(dir, 'sample.onnx');
  await writeOnnxFile(file, b.toModelProto());
  return file;
}

test('graph view of an ONNX model: nodes, edges, folded subgraphs, overlays from the report, repeated blocks', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ps-graph-'));
  try {
    const ir = await readModel(await sampleModel(dir));
    const report = await analyzeModel(ir);
    const g = buildGraphView(ir, report);
    const byLabel = new Map(g.nodes.map((n) => [n.label, n]));
    const gather = byLabel.get('item_embedding/Gather')!;
    assert.deepEqual(gather.tensors, ['item_embedding']);
    assert.ok(Math.abs(gather.overlay.nearZeroRows! - 0.5) < 1e-9, `near-zero rows ${gather.overlay.nearZeroRows}`);
    assert.ok(Math.abs(gather.overlay.int8Error! - report.tensors.find((t) => t.name === 'item_embedding')!.quantError!.int8.relRmse!) < 1e-12);
    assert.equal(gather.overlay.sensitivity, null);
    assert.ok(byLabel.get('item')?.op === 'input' && byLabel.get('score')?.op === 'output');
    // the If node carries its branches; no branch node is drawn on its own
    assert.equal(byLabel.get('choose')?.subgraphNodes, 2);
    assert.ok(!byLabel.has('then/Identity'));
    const id = (l: string) => byLabel.get(l)!.id;
    const edges = new Set(g.edges.map(([a, b]) => `${a}>${b}`));
    assert.ok(edges.has(`${id('item')}>${id('item_embedding/Gather')}`));
    assert.ok(edges.has(`${id('item_embedding/Gather')}>${id('mlp0/MatMul')}`));
    assert.ok(edges.has(`${id(`mlp${BLOCKS - 1}/Relu`)}>${id('choose')}`), 'the branch reads an outer value: the edge goes to the If node');
    // every trainable tensor is read by one node: the shares add up to 1
    const share = g.nodes.reduce((s, n) => s + (n.overlay.params ?? 0), 0);
    assert.ok(Math.abs(share - 1) < 1e-9, `shares add up to ${share}`);
    const mm = byLabel.get('mlp0/MatMul')!;
    assert.equal(mm.overlay.sparsity, 16 / 64);
    // the MLP's blocks fold into one group
    const group = g.groups.find((gr) => gr.nodes.includes(mm.id));
    assert.ok(group, `no group holds the MLP: ${JSON.stringify(g.groups)}`);
    assert.equal(group.nodes.length, group.repeat * 3);
    assert.equal(group.repeat, BLOCKS);
    assert.match(group.label, /MatMul → Add → Relu/);
    // sensitivity, measured later, colours the nodes that read the tensor
    const sens: SensitivityView = {
      model: report.path, metric: 'ndcg', k: 10, budget: 0.01, baseline: { hr: 0.5, ndcg: 0.4 },
      curves: [{ layer: 'item_embedding', metric: 'NDCG@10', points: [{ amount: 0, value: 0.4 }, { amount: 0.5, value: 0.38 }, { amount: 0.9, value: 0.3 }] }],
      proposal: {}, combined: { hr: 0.5, ndcg: 0.4, drop: 0, sparsity: 0 }, seconds: 1,
    };
    const gs = withSensitivity(g, sens);
    assert.ok(Math.abs(gs.nodes.find((n) => n.id === gather.id)!.overlay.sensitivity! - 0.25) < 1e-9);
    assert.deepEqual(buildGraphView(ir, report, sens).nodes.find((n) => n.id === gather.id)!.overlay, gs.nodes.find((n) => n.id === gather.id)!.overlay);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('repeated runs: greedy, longest cover first, wiring must match', () => {
  const ops = ['A', 'B', 'C', 'B', 'C', 'B', 'C', 'D', 'E', 'E', 'E', 'E'];
  const nodes = ops.map((op, i) => ({ id: `n${i}`, op }));
  const chain: Array<[string, string]> = nodes.slice(1).map((n, i) => [nodes[i].id, n.id]);
  assert.deepEqual(repeatedRuns(nodes, chain), [{ start: 1, block: 2, repeat: 3 }, { start: 8, block: 1, repeat: 4 }]);
  // the same ops, but the third block's C reads the second block's B instead of its own: not identical
  const rewired = chain.filter(([, b]) => b !== 'n6').concat([['n4', 'n6']]);
  assert.deepEqual(repeatedRuns(nodes.slice(0, 7), rewired), [{ start: 1, block: 2, repeat: 2 }]);
});

/** A 2,000-node ONNX-like IR: 2 towers of 199 (MatMul, Add, Relu, Mul, Add) residual blocks, plus inputs, a join and a head. */
function bigGraph(): { ir: ModelIR; report: ModelReport } {
  const nodes: ModelIR['graph']['nodes'] = [];
  const tensors: TensorReport[] = [];
  const weight = (name: string, params: number): string => {
    tensors.push({ name, params, zeros: params / 4, nearZeros: params / 4, nonFinite: 0, shape: [params], dtype: 'float32', storedDtype: 'float32', role: 'dense-kernel', layer: name, trainable: true, bytes: params * 4, min: -1, max: 1, mean: 0, std: 1, absMean: 0.5, histogram: { edges: [], counts: [], zeroCount: 0 }, sparsityMeaning: '' });
    return name;
  };
  for (const tower of ['u', 'i']) {
    let h = `${tower}_in`;
    for (let k = 0; k < 199; k++) {
      const p = `${tower}${k}`;
      nodes.push({ name: `${p}/MatMul`, op: 'MatMul', inputs: [h, weight(`${p}.w`, 256)], outputs: [`${p}.m`], attrs: {} });
      nodes.push({ name: `${p}/Add`, op: 'Add', inputs: [`${p}.m`, weight(`${p}.b`, 16)], outputs: [`${p}.a`], attrs: {} });
      nodes.push({ name: `${p}/Relu`, op: 'Relu', inputs: [`${p}.a`], outputs: [`${p}.r`], attrs: {} });
      nodes.push({ name: `${p}/Mul`, op: 'Mul', inputs: [`${p}.r`, weight(`${p}.s`, 16)], outputs: [`${p}.s2`], attrs: {} });
      nodes.push({ name: `${p}/Res`, op: 'Add', inputs: [`${p}.s2`, h], outputs: [`${p}.out`], attrs: {} });
      h = `${p}.out`;
    }
  }
  nodes.push({ name: 'join', op: 'Mul', inputs: ['u198.out', 'i198.out'], outputs: ['j'], attrs: {} });
  for (let k = 0; k < 9; k++) nodes.push({ name: `head${k}`, op: k % 2 ? 'Sigmoid' : 'ReduceSum', inputs: [k ? `hd${k - 1}` : 'j'], outputs: [k === 8 ? 'score' : `hd${k}`], attrs: {} });
  const ir: ModelIR = {
    format: 'onnx', path: '/m/big.onnx', files: [], tensors: [], layers: [], metadata: {}, native: undefined,
    graph: { inputs: [{ name: 'u_in' }, { name: 'i_in' }], outputs: [{ name: 'score' }], nodes },
  };
  const trainableParams = tensors.reduce((s, t) => s + t.params, 0);
  const report = { format: 'onnx', path: ir.path, fileBytes: 0, totalParams: trainableParams, totalZeros: 0, trainableZeros: 0, trainableParams, constantParams: 0, tensors, layers: [], opportunities: [], epsilon: 1e-6, generatedAt: '', tool: { name: 't', version: '0' } } satisfies ModelReport;
  return { ir, report };
}

test('a 2,000-node graph folds its repeated blocks into a few nodes, quickly', () => {
  const { ir, report } = bigGraph();
  assert.equal(ir.graph.nodes.length, 2000);
  const t0 = performance.now();
  const g = buildGraphView(ir, report);
  const ms = performance.now() - t0;
  assert.equal(g.nodes.length, 2003); // 2 inputs and the output added
  const grouped = g.nodes.filter((n) => n.group).length;
  const visible = g.nodes.length - grouped + g.groups.length;
  assert.ok(visible <= 40, `${visible} nodes visible after folding (${g.groups.length} groups)`);
  assert.ok(g.groups.every((gr) => gr.repeat >= 2));
  assert.ok(ms < 2000, `built in ${ms.toFixed(0)} ms`);
  console.log(`# 2,000-node graph: built in ${ms.toFixed(0)} ms, ${visible} nodes visible, groups ${g.groups.map((gr) => `${gr.label} x${gr.repeat}`).join('; ')}`);
});

test('the graph job (run in the job worker, never in the extension host) returns what buildGraphView builds', async () => {
  const fx = await writeTinyFixtures(join(tmpdir(), `prunescope-tiny-fixtures-v${FIXTURE_VERSION}`));
  const path = fx.models.neumf.onnxPath!;
  const ir = await readModel(path);
  const report = await analyzeModel(ir);
  const viaJob = await runJobInProcess({ kind: 'graph', path, report }, new AbortController().signal, () => undefined);
  assert.deepEqual(viaJob, buildGraphView(ir, report));
});
