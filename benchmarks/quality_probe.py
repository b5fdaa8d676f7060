"""One training recipe, its Recall@100 on the shared data.

Trains compressae on the catalogue of ../shared/data (every row but the 1,000
held-out queries), then reports Recall@100 against the exact top-100 in
sparse, reconstructed and asymmetric (dense query) modes, the final loss and
the fraction of dead latents, as one JSON line. A probe for choosing
training settings, not the full quality benchmark.

    python3 benchmarks/quality_probe.py                                # the library's default recipe
    python3 benchmarks/quality_probe.py --reference --epochs 9         # the reference's recipe, ~250 steps
    python3 benchmarks/quality_probe.py --steps 500 --lr 1e-2 --decay cosine --warmup 30 --similarity 0.1
"""
import argparse
import json
import os
import time


import compressae
from quality import load  # the shared data split (this directory)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--h", type=int, default=4096)
    ap.add_argument("--init", default="tied", choices=("tied", "reference"))
    ap.add_argument("--reference", action="store_true",
                    help="the reference's recipe (init and compressae.REFERENCE_TRAINING) under the other options")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--save", help="write the trained model to this path")
    # fit settings: the library's defaults unless given
    ap.add_argument("--steps", type=int, help="about this many Adam steps (whole epochs; sets epochs)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch", type=int, dest="batch_size")
    ap.add_argument("--lr", type=float, dest="learning_rate")
    ap.add_argument("--decay", dest="learning_rate_decay", choices=("plateau", "constant", "cosine", "linear"))
    ap.add_argument("--warmup", type=int, dest="warmup_steps")
    ap.add_argument("--min-lr-ratio", type=float, dest="min_learning_rate_ratio")
    ap.add_argument("--validation", type=float, dest="validation_fraction")
    ap.add_argument("--patience", type=int)
    ap.add_argument("--tol", type=float, dest="tolerance")
    ap.add_argument("--similarity", type=float, dest="sparse_similarity_weight")
    ap.add_argument("--similarity-temperature", type=float, dest="similarity_temperature")
    ap.add_argument("--similarity-rows", type=int, dest="similarity_rows")
    a = ap.parse_args()
    fit_names = ("epochs", "batch_size", "learning_rate", "learning_rate_decay", "warmup_steps",
                 "min_learning_rate_ratio", "validation_fraction", "patience", "tolerance", "sparse_similarity_weight",
                 "similarity_temperature", "similarity_rows")
    fit = dict(compressae.REFERENCE_TRAINING) if a.reference else {}
    fit.update({n: getattr(a, n) for n in fit_names if getattr(a, n) is not None})
    if a.reference:
        a.init = "reference"

    C, Q, catalogue_ids, truth = load(a.data)

    model = compressae.CompresSAE(C.shape[1], a.h, a.k, seed=a.seed, init=a.init)
    if a.steps:
        steps_per_epoch = -(-len(C) // fit.get("batch_size", 4096))
        fit["epochs"] = max(1, round(a.steps / steps_per_epoch))
    start = time.time()
    model.fit(C, seed=a.seed + 1, num_threads=a.threads, **fit)
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
    print(json.dumps(dict(vars(a), fit=fit, epochs_run=len(model.validation_loss_) or fit.get("epochs"),
                          steps_run=len(model.history_), train_seconds=round(seconds, 1),
                          validation_loss=[round(float(v), 4) for v in model.validation_loss_],
                          final_loss=round(float(model.history_[-1]), 4),
                          dead_latents=round(float(model.dead_latents_[-1]), 4),
                          **{f"recall@100_{m}": round(v, 4) for m, v in recall.items()})))


if __name__ == "__main__":
    main()
