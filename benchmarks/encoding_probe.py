#!/usr/bin/env python3
"""Encoding-side choices on one trained model: refitted values and query length.

On the shared data (116,659 catalogue rows, 1,000 held-out queries, exact
cosine top-100 as truth), for one model (``--model``, or the library's
default recipe trained here at ``--k``):

1. the encoder's values against values refitted by least squares on the same
   latents (``encode(refit=True)``): mean reconstruction cosine of the
   catalogue and of the queries, and Recall@100 in the sparse, reconstructed
   and asymmetric modes with each;
2. sparse mode with query codes of more nonzeros than the items' k
   (``SparseIndex.search(Q, query_k=...)``): Recall@100, the posting entries
   a query visits, and queries/s (``--threads``, median of 3 runs).

Prints markdown; ``--out`` also writes it to a file.

    python3 benchmarks/encoding_probe.py --model default-k32.safetensors
    python3 benchmarks/encoding_probe.py --k 32          # trains the default recipe first
"""
import argparse
import datetime as _dt
import os
import platform
import time

import numpy as np

import compressae
from quality import load  # the shared data split (this directory)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TOP = 100


def mean_cosine(a, b):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
    return float(np.mean(np.sum(a * b, axis=1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--model", help="a trained model file; without it the default recipe is trained")
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--query-ks", default="1,1.5,2,3,4,6,8", help="query_k as multiples of the items' k")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out")
    a = ap.parse_args()

    C, Q, catalogue_ids, truth = load(a.data)

    if a.model:
        model = compressae.CompresSAE.load(a.model)
        source = f"loaded from {a.model}"
    else:
        model = compressae.CompresSAE(C.shape[1], 4096, a.k, seed=0)
        start = time.time()
        model.fit(C, seed=1)
        source = f"trained here with the default recipe ({len(model.validation_loss_)} epochs, {time.time() - start:.0f} s)"
    k = model.k
    lines = [f"# Encoding probe ({_dt.datetime.now():%Y-%m-%d %H:%M})", "",
             f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
             f"compressae {compressae.__version__}; model h = {model.latent_dim}, k = {k}, {source}",
             f"- data: {a.data}: {len(C):,} catalogue rows, {len(Q)} queries, Recall@{N_TOP} against "
             "the exact cosine top-100", ""]

    def recall(ids):
        return compressae.recall_at_n(catalogue_ids[ids], truth)

    plain_c, plain_q = model.encode(C), model.encode(Q)
    refit_c, refit_q = model.refit(C, plain_c), model.refit(Q, plain_q)
    lines += ["## Encoder values against refitted values", "",
              "| values | recon. cosine, catalogue | recon. cosine, queries | sparse | reconstructed | asymmetric |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, items, qcodes in (("encoder", plain_c, plain_q), ("refitted (least squares)", refit_c, refit_q)):
        row = [mean_cosine(C, model.decode(items)), mean_cosine(Q, model.decode(qcodes))]
        sparse = compressae.SparseIndex(model, mode="sparse")
        sparse.add(items)
        row.append(recall(sparse.search(qcodes, n=N_TOP)[1]))
        recon = compressae.SparseIndex(model, mode="reconstructed")
        recon.add(items)
        row.append(recall(recon.search(qcodes, n=N_TOP)[1]))
        row.append(recall(recon.search(Q, n=N_TOP)[1]))
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in row) + " |")
    lines.append("")

    sparse = compressae.SparseIndex(model, mode="sparse")
    sparse.add(plain_c)
    lengths = np.bincount(plain_c.indices.ravel(), minlength=model.latent_dim)
    lines += [f"## Sparse mode: query codes of query_k nonzeros against items of k = {k}", "",
              f"queries/s: all {len(Q)} queries as codes (encoded beforehand), {a.threads} thread(s), "
              "median of 3 runs.", "",
              "| query_k | Recall@100 | posting entries per query | queries/s |",
              "|---:|---:|---:|---:|"]
    for factor in (float(v) for v in a.query_ks.split(",")):
        qk = min(model.latent_dim, int(round(factor * k)))
        codes = model.encode(Q, k=qk)
        visited = lengths[codes.indices].sum(axis=1).mean()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            _, ids = sparse.search(codes, n=N_TOP, num_threads=a.threads)
            times.append(time.perf_counter() - start)
        lines.append(f"| {qk} | {recall(ids):.4f} | {visited:,.0f} ({visited / len(C):.2f} N) | "
                     f"{len(Q) / np.median(times):,.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
