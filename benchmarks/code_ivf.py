#!/usr/bin/env python3
"""A coarse partition of items by code (IVF over codes), from Python, on the scale catalogue.

A quick measurement of one cheap sublinear idea for sparse search, built only
from the library's public API (no library change): the items' k-codes are
clustered, one ``SparseIndex`` (sparse mode, standard storage) holds each
cluster, and a query searches only the ``nprobe`` clusters whose centroid is
nearest its code, merging their top-100 lists.

- Centroids: spherical k-means (faiss, ``--iters`` iterations) over the
  L2-normalised codes of every 16th item, densified to h = 4096 columns;
  ``--clusters`` centroids.
- Every item goes to the centroid with the largest dot product with its
  normalised code (a gather of k centroid columns per item).
- Queries (their k-codes) score the centroids the same way and probe the
  best ``nprobe``; the queries probing a cluster are searched in one batch on
  its index; each query's candidates are merged by score (then id).
- Timed at 1 thread against the exhaustive sparse index over the same items,
  round-robin, the median of ``--runs`` rounds, under ``--lock``. Recall@100
  against exact dense search and against the exhaustive sparse ranking.

Uses the caches of ``benchmarks/scale.py`` (model, codes, truth) in
``--workdir``; run scale.py first. N = 1M only (the dense-truth catalogue).

Run:  python3 benchmarks/code_ivf.py
"""

from __future__ import annotations

import argparse
import datetime as _dt
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402
from scale import compressae, faiss, log, load_avg, rss_gb, TOP, H, K  # noqa: E402


def normalised(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-30)


def centroid_scores(ct: np.ndarray, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(n, clusters): normalised code . centroid, by gathering the code's centroid rows."""
    v = normalised(values)
    out = np.zeros((len(indices), ct.shape[1]), np.float32)
    for j in range(indices.shape[1]):
        out += v[:, j:j + 1] * ct[indices[:, j]]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", default="/work/scratch/scale")
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--clusters", type=int, default=128)
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--nprobe", default="4,8,16,32")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--lock", default="/work/helpers/bench.lock")
    p.add_argument("--out", default=str(scale.HERE / "results" / f"code-ivf-{_dt.date.today().isoformat()}.md"))
    a = p.parse_args()
    wd = Path(a.workdir)
    n = a.n
    data = Path(a.data)
    X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
    qrows = np.load(data / "wordnet_split_queries.npy")
    mask = np.ones(len(X), bool)
    mask[qrows] = False
    synth = scale.Synth(X[mask], a.noise, a.seed)
    queries = np.ascontiguousarray(synth.queries(X[qrows])[:a.queries])
    del X
    nq = len(queries)
    model = compressae.CompresSAE.load(wd / f"scale-model-h{H}-k{K}-e{a.epochs}-s{a.seed}.safetensors")
    truth = np.load(wd / f"scale-truth-{n}-q{nq}-s{a.seed}.npy")
    ind = np.load(wd / f"scale-codes-{n}-indices.npy", mmap_mode="r")
    val = np.load(wd / f"scale-codes-{n}-values.npy", mmap_mode="r")
    qc = model.encode(queries)
    qi, qv = np.ascontiguousarray(qc.indices), np.ascontiguousarray(qc.values)

    # k-means over a sample of codes, densified
    t0 = time.perf_counter()
    si, sv = np.asarray(ind[::16]), normalised(val[::16])
    dense = np.zeros((len(si), H), np.float32)
    np.put_along_axis(dense, si.astype(np.int64), sv, 1)
    km = faiss.Clustering(H, a.clusters)
    km.niter, km.spherical, km.seed = a.iters, True, 0
    faiss.omp_set_num_threads(2)
    flat = faiss.IndexFlatIP(H)
    km.train(dense, flat)
    ct = np.ascontiguousarray(faiss.vector_to_array(km.centroids).reshape(a.clusters, H).T)  # (H, C)
    del dense
    t_km = time.perf_counter() - t0
    assign = np.empty(n, np.int32)
    for lo in range(0, n, 1 << 16):
        hi = min(n, lo + (1 << 16))
        assign[lo:hi] = centroid_scores(ct, np.asarray(ind[lo:hi]), np.asarray(val[lo:hi])).argmax(1)
    t_assign = time.perf_counter() - t0 - t_km
    sizes = np.bincount(assign, minlength=a.clusters)
    log(f"k-means {t_km:.0f} s, assignment {t_assign:.0f} s; cluster sizes min {sizes.min():,} "
        f"median {int(np.median(sizes)):,} max {sizes.max():,}")

    # one index per cluster (ids: positions in `order`), and the exhaustive index
    t0 = time.perf_counter()
    order = np.argsort(assign, kind="stable")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    parts = []
    for c in range(a.clusters):
        rows = order[starts[c]:starts[c + 1]]
        index = compressae.SparseIndex(model, mode="sparse")
        if len(rows):
            index.add((np.ascontiguousarray(ind[rows]), np.ascontiguousarray(val[rows])))
            index.search((qi[:1], qv[:1]), n=TOP, num_threads=1)
        parts.append(index)
    t_parts = time.perf_counter() - t0
    t0 = time.perf_counter()
    full = compressae.SparseIndex(model, mode="sparse")
    for lo in range(0, n, 1 << 18):
        full.add((np.ascontiguousarray(ind[lo:lo + (1 << 18)]), np.ascontiguousarray(val[lo:lo + (1 << 18)])))
    full.search((qi[:1], qv[:1]), n=TOP, num_threads=1)
    t_full = time.perf_counter() - t0
    log(f"indexes: {a.clusters} parts {t_parts:.0f} s, exhaustive {t_full:.0f} s, rss max {rss_gb():.1f} GB")

    def probe_search(nprobe: int):
        def fn():
            cs = centroid_scores(ct, qi, qv)
            probes = np.argpartition(-cs, nprobe - 1, axis=1)[:, :nprobe]
            cand_s = np.full((nq, nprobe * TOP), -np.inf, np.float32)
            cand_i = np.full((nq, nprobe * TOP), -1, np.int64)
            for c in np.unique(probes):
                qs, slot = np.nonzero(probes == c)
                if starts[c + 1] == starts[c]:
                    continue
                s, i = parts[c].search((qi[qs], qv[qs]), n=TOP, num_threads=1)
                cols = slot[:, None] * TOP + np.arange(s.shape[1])
                cand_s[qs[:, None], cols] = s
                cand_i[qs[:, None], cols] = order[starts[c] + i]
            top = np.lexsort((cand_i, -cand_s), axis=1)[:, :TOP]
            return np.take_along_axis(cand_i, top, 1)
        return fn

    methods = [("exhaustive sparse", lambda: full.search((qi, qv), n=TOP, num_threads=1)[1])]
    methods += [(f"IVF over codes, {a.clusters} clusters, nprobe {p}", probe_search(p))
                for p in (int(x) for x in a.nprobe.split(","))]
    found = {name: fn() for name, fn in methods}
    times = {name: [] for name, _ in methods}
    with scale.Lock(a.lock):
        load_before = load_avg()
        for r in range(a.runs):
            for name, fn in methods:
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
        load_after = load_avg()
    ref = found["exhaustive sparse"]
    base_qps = nq / statistics.median(times["exhaustive sparse"])
    lines = [f"# IVF over codes: a coarse partition of items by code ({_dt.date.today().isoformat()})", "",
             f"Command: `python3 benchmarks/code_ivf.py {' '.join(sys.argv[1:])}` (after "
             f"`benchmarks/scale.py --sizes 1000000`, whose caches it reads)", "",
             f"Machine: {scale.machine()['cpu']}, 2 CPUs, shared with other sessions; release build of the library; "
             f"load (uptime) {load_before} before, {load_after} after timing (under flock {a.lock}). "
             f"{n:,} items of the scale benchmark's catalogue, sparse mode, standard storage, {nq} k-code "
             f"queries, 1 thread, median of {a.runs} rounds interleaved. Built from the Python API only "
             f"(one SparseIndex per cluster); the library is unchanged.", "",
             f"Clustering: spherical k-means, {a.clusters} centroids over {len(si):,} normalised codes "
             f"(every 16th item, densified to {H} columns), {a.iters} iterations: {t_km:.0f} s; assigning "
             f"{n:,} items: {t_assign:.0f} s; cluster sizes min {sizes.min():,}, median "
             f"{int(np.median(sizes)):,}, max {sizes.max():,}. Adding to {a.clusters} indexes: {t_parts:.0f} s "
             f"(one exhaustive index: {t_full:.0f} s).", "",
             "| search | q/s | speed-up | Recall@100 vs exact dense | vs exhaustive sparse |",
             "|---|---:|---:|---:|---:|"]
    for name, _ in methods:
        qps = nq / statistics.median(times[name])
        lines.append(f"| {name} | {qps:,.0f} | {qps / base_qps:.2f}x | "
                     f"{compressae.recall_at_n(found[name], truth):.3f} | "
                     f"{compressae.recall_at_n(found[name], ref):.3f} |")
    text = "\n".join(lines) + "\n"
    Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
