#!/usr/bin/env python3
"""Recall cost of the sign split (compressae.export) in each retrieval mode.

Engines that refuse negative weights (Milvus items and queries,
Elasticsearch/OpenSearch) store the split codes ``[y+, y-]`` over 2h latents
and can only take a split query ``[q+, q-]``, which scores
``(q . y + |q| . |y|) / 2`` instead of ``q . y``. This measures what that
costs on the WordNet MiniLM data (``--data``, default ../shared/data: 116,659
catalogue rows, 1,000 held-out queries, exact cosine top-100 as truth), for

- sparse mode, query codes of k nonzeros (the symmetric code cosine);
- sparse mode, query codes of 4k nonzeros (the index's default for dense queries);
- reconstructed mode, dense queries (``export.reconstructed_items`` /
  ``reconstructed_queries``: item ``s / |s W_dec|``, query ``W_dec x``, h nonzeros);

each as: signed (what Qdrant and pgvector run; equal to compressae's own
index), the exact split query ``[q, -q]`` against split items (any engine that
takes a signed query), the non-negative split query, and that query's top
``--rerank`` candidates reranked by the exact score (what a client can do
with the codes it has). Columns: Recall@100 against the truth, and the mean
top-10 overlap with the signed ranking.

Run:  python3 benchmarks/sign_split.py              # about 3 minutes on 2 cores
      python3 benchmarks/sign_split.py --epochs 3   # shorter training
Writes benchmarks/results/sign-split-<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import subprocess
import time

import numpy as np
import scipy.sparse as sp

import compressae
from compressae import SparseIndex, export, recall_at_n
from quality import load  # the shared data split (this directory)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def csr(codes):
    return codes.to_csr().astype(np.float32)


def top_n(items_csr, queries_csr, n, chunk=100):
    """Ids of the n best dot products of each query row over the item rows."""
    out = np.empty((queries_csr.shape[0], n), dtype=np.int64)
    for start in range(0, queries_csr.shape[0], chunk):
        dense = queries_csr[start:start + chunk].toarray().T
        scores = np.ascontiguousarray((items_csr @ dense).T)
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
        out[start:start + chunk] = np.take_along_axis(part, order, axis=1)
    return out


def rerank(candidates, items_csr, queries_csr, n):
    """The n best of each query's candidates by the exact dot product."""
    out = np.empty((candidates.shape[0], n), dtype=np.int64)
    for q in range(candidates.shape[0]):
        cand = candidates[q]
        scores = (items_csr[cand] @ queries_csr[q].T).toarray().ravel()
        out[q] = cand[np.argsort(-scores, kind="stable")[:n]]
    return out


def overlap10(a, b):
    return float(np.mean([len(set(x[:10]) & set(y[:10])) / 10 for x, y in zip(a, b)]))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--latent-dim", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=6,
                        help="training epochs cap of the default recipe (default 6)")
    parser.add_argument("--rerank", type=int, default=1000)
    parser.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    args = parser.parse_args()

    t0 = time.time()
    C, Q, catalogue_ids, truth = load(args.data)
    model = compressae.CompresSAE(C.shape[1], latent_dim=args.latent_dim, k=args.k, seed=0)
    model.fit(C, epochs=args.epochs)
    train_s = time.time() - t0
    k, h = args.k, args.latent_dim

    def recall(ids):
        return recall_at_n(catalogue_ids[ids], truth, 100)

    rows = []

    def measure(mode, items, queries, signed_ids):
        """items/queries: signed SparseCodes already scaled for dot products."""
        split_items = csr(export.sign_split(items))
        exact_split = top_n(split_items, csr(export.split_query(queries)), 100)
        nonneg = top_n(split_items, csr(export.sign_split(queries)), max(100, args.rerank))
        reranked = rerank(nonneg, csr(items), csr(queries), 100)
        for name, ids in (("signed (Qdrant, pgvector; = SparseIndex)", signed_ids),
                          ("split items, [q, -q] query", exact_split),
                          ("split items, [q+, q-] query (Milvus, ES)", nonneg[:, :100]),
                          (f"  same, top-{args.rerank} reranked exactly", reranked)):
            rows.append((mode, name, recall(ids), overlap10(ids, signed_ids)))
            print(f"{mode:34s} {name:44s} R@100 {rows[-1][2]:.4f}  top-10 overlap {rows[-1][3]:.3f}",
                  flush=True)

    item_codes = model.encode(C)
    unit_items = export.normalize_rows(item_codes)
    with SparseIndex(model, mode="sparse") as index:
        index.add(item_codes)
        for query_k in (k, 4 * k):
            q_codes = model.encode(Q, k=query_k)
            _, signed = index.search(q_codes, n=100)
            measure(f"sparse, query codes k={query_k}", unit_items,
                    export.normalize_rows(q_codes), signed)

    refit_codes = model.encode(C, refit=True)
    with SparseIndex(model, mode="reconstructed") as index:
        index.add(refit_codes)
        _, signed = index.search(Q, n=100)
    measure("reconstructed, dense query", export.reconstructed_items(model, refit_codes),
            export.reconstructed_queries(model, Q), signed)
    total_s = time.time() - t0

    try:
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "?"
    date = _dt.date.today().isoformat()
    lines = [f"# Sign-split recall cost ({date})", "",
             f"`python3 benchmarks/sign_split.py --epochs {args.epochs} --k {k} "
             f"--latent-dim {h} --rerank {args.rerank}` at commit {commit}, "
             f"{platform.machine()}, {os.cpu_count()} cores, library BLAS "
             f"{compressae.blas_name()}; total {total_s:.0f} s (training {train_s:.0f} s, "
             f"{model.history_.size} steps).", "",
             f"WordNet MiniLM 384-d: {len(C)} catalogue rows, {len(Q)} queries; "
             f"h = {h}, k = {k}, default recipe capped at {args.epochs} epochs. "
             "Recall@100 against the exact dense top-100; top-10 overlap with the "
             "signed ranking (compressae's own index).", "",
             "| mode | engine query | Recall@100 | top-10 overlap |",
             "| --- | --- | ---: | ---: |"]
    lines += [f"| {m} | {n.strip()} | {r:.4f} | {o:.3f} |" for m, n, r, o in rows]
    os.makedirs(args.out_dir, exist_ok=True)
    path = os.path.join(args.out_dir, f"sign-split-{date}.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {path} ({total_s:.0f} s)")


if __name__ == "__main__":
    main()
