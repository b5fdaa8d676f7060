"""One training recipe, its Recall@100 on the shared data.

Trains compressae on the catalogue of ../shared/data (every row but the 1,000
held-out queries), then reports Recall@100 against the exact top-100 in
sparse, reconstructed and asymmetric (dense query) modes, the final loss and
the fraction of dead latents, as one JSON line. A probe for choosing
training settings, not the full quality benchmark.

    python3 benchmarks/quality_probe.py --steps 250            # the reference's recipe
    python3 benchmarks/quality_probe.py --steps 250 --tied     # encoder initialised as decoder^T
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
    ap.add_argument("--tied", action="store_true", help="initialise encoder_w as decoder_w transposed")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()

    X = np.load(os.path.join(a.data, "wordnet_minilm384_f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(a.data, "wordnet_split_queries.npy"))
    truth = np.load(os.path.join(a.data, "wordnet_gt_top100.npy"))
    mask = np.ones(len(X), bool)
    mask[queries] = False
    catalogue_ids = np.nonzero(mask)[0]
    C, Q = X[catalogue_ids], X[queries]

    model = compressae.CompresSAE(X.shape[1], a.h, a.k, seed=0)
    if a.tied:
        model = compressae.CompresSAE.from_weights(
            np.ascontiguousarray(model.decoder_w.T), model.encoder_b, model.decoder_w, a.k)
    steps_per_epoch = -(-len(C) // a.batch)
    epochs = max(1, round(a.steps / steps_per_epoch))
    start = time.time()
    model.fit(C, batch_size=a.batch, epochs=epochs, lr=a.lr, seed=1, num_threads=a.threads)
    seconds = time.time() - start

    recall = {}
    for mode in ("sparse", "reconstructed"):
        index = compressae.SparseIndex(model, mode=mode)
        index.add(model.encode(C))
        _, ids = index.search(model.encode(Q), n=100)
        recall[mode] = compressae.recall_at_n(catalogue_ids[ids], truth)
        if mode == "reconstructed":
            _, ids = index.search(Q, n=100)
            recall["asymmetric"] = compressae.recall_at_n(catalogue_ids[ids], truth)
    print(json.dumps(dict(vars(a), epochs=epochs, steps=epochs * steps_per_epoch, train_seconds=round(seconds, 1),
                          final_loss=round(float(model.history_[-1]), 4),
                          dead_latents=round(float(model.dead_latents_[-1]), 4),
                          **{f"recall@100_{m}": round(v, 4) for m, v in recall.items()})))


if __name__ == "__main__":
    main()
