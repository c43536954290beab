#!/usr/bin/env bash
# Runs one job across local `prunescope worker` processes on a private Redis server, the way it
# runs across machines (README "Across machines"): a queue, N workers, shards, then the merge.
# Usage:
#   scripts/cluster/local.sh MODEL [SHARDS=4] [WORKERS=2]
#       analysis: prints the merged report (JSON) on stdout
#   scripts/cluster/local.sh --quantize OUT.onnx MODEL [SHARDS=4] [WORKERS=2]
#       ONNX int8: the workers quantize table shards, the model is assembled at OUT.onnx; prints
#       the job result (JSON) on stdout
# Each worker's log goes to stderr. Needs redis-server (Debian: apt-get install redis-server) and
# a built CLI (npm run build, or npm run build:tests; PRUNESCOPE_CLI=path/to/main.js picks another).
set -euo pipefail
QUANTIZE_OUT=""
if [ "${1:-}" = "--quantize" ]; then
  QUANTIZE_OUT=${2:?usage: scripts/cluster/local.sh --quantize OUT.onnx MODEL [SHARDS] [WORKERS]}
  shift 2
fi
MODEL=${1:?usage: scripts/cluster/local.sh [--quantize OUT.onnx] MODEL [SHARDS] [WORKERS]}
SHARDS=${2:-4}
WORKERS=${3:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI=${PRUNESCOPE_CLI:-}
if [ -z "$CLI" ]; then
  if [ -f "$ROOT/dist/cli.js" ]; then CLI="$ROOT/dist/cli.js"; else CLI="$ROOT/out/src/cli/main.js"; fi
fi
command -v redis-server > /dev/null || { echo "cluster: redis-server not found (Debian: apt-get install redis-server)" >&2; exit 3; }
WORK=$(mktemp -d)
PORT=$(node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})")
PIDS=""
cleanup() {
  # workers finish their job in progress on SIGTERM; then the server goes
  for p in $PIDS; do kill -TERM "$p" 2> /dev/null || true; done
  for p in $PIDS; do wait "$p" 2> /dev/null || true; done
  for f in "$WORK"/worker-*.log; do [ -f "$f" ] && sed "s/^/$(basename "$f" .log): /" "$f" >&2; done
  rm -rf "$WORK"
}
trap cleanup EXIT
redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK" > "$WORK/redis.log" 2>&1 &
PIDS="$!"
for _ in $(seq 1 100); do
  if node -e "const s=require('net').connect($PORT,'127.0.0.1',()=>{s.end();process.exit(0)});s.on('error',()=>process.exit(1))"; then break; fi
  sleep 0.1
done
for i in $(seq 1 "$WORKERS"); do
  node "$CLI" worker --redis "redis://127.0.0.1:$PORT" > "$WORK/worker-$i.log" 2>&1 &
  PIDS="$! $PIDS"
done
if [ -n "$QUANTIZE_OUT" ]; then
  node "$CLI" quantize "$MODEL" --dtype int8 --distribute "$SHARDS" --redis "redis://127.0.0.1:$PORT" --shard-dir "$WORK/shards" \
    --out "$QUANTIZE_OUT" --force --no-latency --json
else
  node "$CLI" analyze "$MODEL" --distribute "$SHARDS" --redis "redis://127.0.0.1:$PORT" --shard-dir "$WORK/shards" --json
fi
