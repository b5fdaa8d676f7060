"""One training recipe, its Recall@100 on the shared data.

Trains compressae on the catalogue of ../shared/data (every row but the 1,000
held-out queries), then reports Recall@100 against the exact top-100 in
sparse, reconstructed and asymmetric (dense query) modes, the final loss and
the fraction of dead latents, as one JSON line. A probe for choosing
training settings, not the full quality benchmark.

    python3 benchmarks/quality_probe.py --steps 250 --init reference   # the reference's recipe
    python3 benchmarks/quality_probe.py --steps 1000 --lr 3e-3 --decay cosine --warmup 50
"""
import argparse
import json
import os
import time

import numpy as np

import compressae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--h", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=250, help="about this many Adam steps (whole epochs)")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--init", default="tied", choices=("tied", "reference"))
    ap.add_argument("--decay", default="constant", choices=("constant", "cosine", "linear"))
    ap.add_argument("--warmup", type=int, default=0, help="warm-up steps")
    ap.add_argument("--min-lr-ratio", type=float, default=0.0)
    ap.add_argument("--validation", type=float, default=0.0, help="validation fraction")
    ap.add_argument("--patience", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="write the trained model to this path")
    ap.add_argument("--similarity", type=float, default=0.0, help="sparse similarity term weight")
    ap.add_argument("--recon-similarity", type=float, default=0.0, help="reconstructed similarity term weight")
    ap.add_argument("--similarity-temperature", type=float, default=0.05)
    ap.add_argument("--similarity-rows", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    X = np.load(os.path.join(a.data, "wordnet_minilm384_f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(a.data, "wordnet_split_queries.npy"))
    truth = np.load(os.path.join(a.data, "wordnet_gt_top100.npy"))
    mask = np.ones(len(X), bool)
    mask[queries] = False
    catalogue_ids = np.nonzero(mask)[0]
    C, Q = X[catalogue_ids], X[queries]

    model = compressae.CompresSAE(X.shape[1], a.h, a.k, seed=a.seed, init=a.init)
    steps_per_epoch = -(-len(C) // a.batch)
    epochs = max(1, round(a.steps / steps_per_epoch))
    start = time.time()
    model.fit(C, batch_size=a.batch, epochs=epochs, lr=a.lr, seed=a.seed + 1, num_threads=a.threads,
              warmup_steps=a.warmup, lr_decay=a.decay, min_lr_ratio=a.min_lr_ratio,
              validation_fraction=a.validation, patience=a.patience,
              sparse_similarity_weight=a.similarity, reconstructed_similarity_weight=a.recon_similarity, similarity_temperature=a.similarity_temperature,
              similarity_rows=a.similarity_rows)
    seconds = time.time() - start

    if a.save:
        model.save(a.save)
    recall = {}
    for mode in ("sparse", "reconstructed"):
        index = compressae.SparseIndex(model, mode=mode)
        index.add(model.encode(C))
        _, ids = index.search(model.encode(Q), n=100)
        recall[mode] = compressae.recall_at_n(catalogue_ids[ids], truth)
        if mode == "reconstructed":
            _, ids = index.search(Q, n=100)
            recall["asymmetric"] = compressae.recall_at_n(catalogue_ids[ids], truth)
    print(json.dumps(dict(vars(a), epochs=epochs, steps=len(model.history_), train_seconds=round(seconds, 1),
                          validation_loss=[round(float(v), 4) for v in model.validation_loss_][-3:],
                          final_loss=round(float(model.history_[-1]), 4),
                          dead_latents=round(float(model.dead_latents_[-1]), 4),
                          **{f"recall@100_{m}": round(v, 4) for m, v in recall.items()})))


if __name__ == "__main__":
    main()
