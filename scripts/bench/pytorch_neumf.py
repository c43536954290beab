#!/usr/bin/env python3
"""PyTorch side of the NeuMF training-speed benchmark, and the MovieLens teacher.

Same protocol as scripts/bench/movielens.ts (the NCF paper's): leave-one-out by timestamp, ratings
as implicit positives, 4 fresh negatives per positive each epoch, 99 negatives per user to rank
against. The teacher is a real torch.onnx.export (logits, BCEWithLogitsLoss) so that the
distillation and evaluation paths are exercised on what PyTorch users bring, not only our own
sigmoid-ending models.

Usage:
  python3 pytorch_neumf.py --data /work/shared/data/ml-100k/u.data --out DIR [--epochs 10] [--threads 1]
  python3 pytorch_neumf.py --data .../u.data --bench-only [--threads 1]
Prints JSON lines. Writes (full run only) DIR/train.csv, DIR/candidates.csv, DIR/neumf_teacher.onnx;
DIR must be outside the repository (MovieLens data and generated models are never committed).
Exit code 3 when torch (or numpy) is missing, so a caller can skip instead of failing.
"""

import argparse
import json
import os
import sys
import time

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:
    print(json.dumps({"skipped": f"PyTorch not available ({e}); install python3-torch"}, separators=(",", ":")))
    sys.exit(3)

NEGATIVES_TRAIN, NEGATIVES_EVAL = 4, 99
SEED = 1


def emit(obj):
    print(json.dumps(obj, separators=(",", ":")), flush=True)


class NeuMF(nn.Module):
    """Module names as in the common PyTorch NCF code; our analyser keys on them."""

    def __init__(self, users, items, gmf_dim=32, mlp_dim=32, hidden=(32, 16)):
        super().__init__()
        self.embed_user_GMF = nn.Embedding(users, gmf_dim)
        self.embed_item_GMF = nn.Embedding(items, gmf_dim)
        self.embed_user_MLP = nn.Embedding(users, mlp_dim)
        self.embed_item_MLP = nn.Embedding(items, mlp_dim)
        layers, width = [], 2 * mlp_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.MLP_layers = nn.Sequential(*layers)
        self.predict_layer = nn.Linear(gmf_dim + width, 1)
        # initialisation of the NCF reference code (small embeddings, Xavier MLP)
        for e in (self.embed_user_GMF, self.embed_item_GMF, self.embed_user_MLP, self.embed_item_MLP):
            nn.init.normal_(e.weight, std=0.01)
        for m in self.MLP_layers:
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.kaiming_uniform_(self.predict_layer.weight, a=1, nonlinearity="sigmoid")
        nn.init.zeros_(self.predict_layer.bias)

    def forward(self, user, item):
        gmf = self.embed_user_GMF(user) * self.embed_item_GMF(item)
        mlp = self.MLP_layers(torch.cat([self.embed_user_MLP(user), self.embed_item_MLP(item)], -1))
        return self.predict_layer(torch.cat([gmf, mlp], -1)).squeeze(-1)  # a logit: no sigmoid


def load(path):
    d = np.loadtxt(path, dtype=np.int64, delimiter="\t")
    user, item, ts = d[:, 0] - 1, d[:, 1] - 1, d[:, 3]
    users, items = int(user.max()) + 1, int(item.max()) + 1
    # per user by time; equal timestamps: the larger item id counts as later (as movielens.ts)
    order = np.lexsort((item, ts, user))
    user, item = user[order], item[order]
    last = np.ones(len(user), dtype=bool)
    last[:-1] = user[1:] != user[:-1]
    counts = np.bincount(user, minlength=users)
    held = last & (counts[user] >= 2)  # a user with one rating keeps it for training
    rated = np.zeros((users, items), dtype=bool)
    rated[user, item] = True
    return users, items, user[~held], item[~held], user[held], item[held], rated


def candidates(rng, test_user, test_item, rated):
    rows = []
    for u, pos in zip(test_user, test_item):
        negs = rng.choice(np.flatnonzero(~rated[u]), NEGATIVES_EVAL, replace=False)
        rows.append(np.stack([np.full(1 + NEGATIVES_EVAL, u), np.concatenate([[pos], negs]),
                              np.r_[1, np.zeros(NEGATIVES_EVAL, dtype=np.int64)]], 1))
    return np.concatenate(rows)


def epoch_rows(rng, tu, ti, rated, items):
    """Every positive plus 4 negatives the user never rated, then shuffled (not timed)."""
    nu = np.repeat(tu, NEGATIVES_TRAIN)
    ni = rng.integers(0, items, len(nu))
    bad = rated[nu, ni]
    while bad.any():  # rejection: redraw only the rated ones
        ni[bad] = rng.integers(0, items, int(bad.sum()))
        bad = rated[nu, ni]
    u = np.concatenate([tu, nu])
    i = np.concatenate([ti, ni])
    y = np.concatenate([np.ones(len(tu), np.float32), np.zeros(len(nu), np.float32)])
    p = rng.permutation(len(u))
    return torch.from_numpy(u[p]), torch.from_numpy(i[p]), torch.from_numpy(y[p])


def run_epoch(model, opt, loss_fn, u, i, y, batch):
    model.train()
    total = 0.0
    t0 = time.perf_counter()
    for s in range(0, len(y), batch):
        opt.zero_grad()
        loss = loss_fn(model(u[s:s + batch], i[s:s + batch]), y[s:s + batch])
        loss.backward()
        opt.step()
        # reading the loss each batch syncs like our side's `await loss.data()`
        total += loss.item() * len(y[s:s + batch])
    return time.perf_counter() - t0, total / len(y)


def metrics(model, cand, batch=100_000):
    model.eval()
    with torch.no_grad():
        s = torch.cat([model(torch.from_numpy(cand[k:k + batch, 0]), torch.from_numpy(cand[k:k + batch, 1]))
                       for k in range(0, len(cand), batch)]).numpy().reshape(-1, 1 + NEGATIVES_EVAL)
    rank = (s[:, 1:] >= s[:, :1]).sum(1)  # ties count against the positive
    hit = rank < 10
    return float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean()), float(hit.mean()), float(s.min()), float(s.max())


def main():
    ap = argparse.ArgumentParser(description="PyTorch NeuMF on MovieLens-100K: training speed and the ONNX teacher")
    ap.add_argument("--data", required=True, help="MovieLens-100K u.data")
    ap.add_argument("--out", help="output folder (required unless --bench-only)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--lr", type=float, default=0.001)
    ap.add_argument("--bench-only", action="store_true", help="time one epoch and print samples/s only")
    a = ap.parse_args()
    if not a.bench_only and not a.out:
        ap.error("--out is required unless --bench-only")
    torch.set_num_threads(a.threads)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    users, items, tu, ti, test_u, test_i, rated = load(a.data)
    model = NeuMF(users, items)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    loss_fn = nn.BCEWithLogitsLoss()

    if a.bench_only:
        u, i, y = epoch_rows(rng, tu, ti, rated, items)
        seconds, _ = run_epoch(model, opt, loss_fn, u, i, y, a.batch)
        emit({"samplesPerSecond": round(len(y) / seconds, 1), "threads": a.threads, "torch": torch.__version__})
        return

    # candidates drawn first with their own seed, so they do not depend on --epochs
    cand = candidates(np.random.default_rng(SEED + 1), test_u, test_i, rated)
    for e in range(1, a.epochs + 1):
        u, i, y = epoch_rows(rng, tu, ti, rated, items)
        seconds, loss = run_epoch(model, opt, loss_fn, u, i, y, a.batch)
        emit({"epoch": e, "seconds": round(seconds, 3), "samples": len(y),
                          "samplesPerSecond": round(len(y) / seconds, 1), "loss": round(loss, 5)})

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "train.csv"), "w") as f:
        f.write("user,item\n")
        f.writelines(f"{x},{z}\n" for x, z in zip(tu.tolist(), ti.tolist()))
    with open(os.path.join(a.out, "candidates.csv"), "w") as f:
        f.write("user,item,label\n")
        f.writelines(f"{x},{z},{l}\n" for x, z, l in cand.tolist())
    model.eval()
    onnx_path = os.path.join(a.out, "neumf_teacher.onnx")
    example = (torch.from_numpy(cand[:4, 0]), torch.from_numpy(cand[:4, 1]))
    torch.onnx.export(model, example, onnx_path, input_names=["user", "item"], output_names=["score"],
                      dynamic_axes={"user": {0: "batch"}, "item": {0: "batch"}, "score": {0: "batch"}},
                      opset_version=13, do_constant_folding=True)
    ndcg, hr, lo, hi = metrics(model, cand)
    emit({"teacher": onnx_path, "users": users, "items": items, "trainPositives": len(tu),
                      "evaluatedUsers": len(test_u), "ndcg10": round(ndcg, 4), "hr10": round(hr, 4),
                      "scoreMin": round(lo, 4), "scoreMax": round(hi, 4), "output": "logit",
                      "threads": a.threads, "torch": torch.__version__})


if __name__ == "__main__":
    main()
