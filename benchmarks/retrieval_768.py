#!/usr/bin/env python3
"""Reconstructed-mode retrieval on a 768-d set, against faiss IndexFlatIP.

The 768-d set is the one benchmarks/speed.py trains on: each 384-d MiniLM
row x of ``--data`` becomes [x, x @ Q], Q a fixed random 384 x 384 rotation
(QR of a Gaussian matrix, numpy seed 768). The catalogue / query split is
the shared one (``wordnet_split_queries.npy``: 116,659 items, 1000
queries); the ground truth is the exact cosine top-100 of the 768-d rows
(``compressae.exact_search``).

1. A model with h = 4096, k = 32 is trained on the 768-d catalogue with the
   library's default recipe for ``--epochs`` epochs (default 8), or loaded
   from ``--model``.
2. A reconstructed-mode index takes the dense catalogue (it stores refitted
   codes); queries are searched as refitted codes (decoded: reconstructed
   mode) and as dense vectors (asymmetric search). Sparse mode with k-code
   queries is measured too, for the Recall@100 comparison.
3. faiss ``IndexFlatIP`` on the L2-normalised 768-d float32 rows.

Queries/s: all 1000 queries in one call, median of ``--runs`` (default 5)
runs going round-robin over the methods, at each thread count of
``--threads`` (default 1,2). Results are printed and written to ``--out``
(default benchmarks/results/retrieval-768-<date>.md).

    python3 benchmarks/retrieval_768.py [--model m.safetensors] [--epochs 8]
"""
from __future__ import annotations

import argparse
import datetime as _dt
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
# The sibling benchmark's imports (compressae from this checkout if it is not
# installed; faiss if installed, else None) and helpers.
from retrieval import compressae, faiss, log, machine, unit_rows, write_report  # noqa: E402

H, K, TOP = 4096, 32, 100
ROTATION_SEED = 768


def rows_768(x: np.ndarray) -> np.ndarray:
    """[x, x @ Q] with speed.py's fixed rotation Q."""
    rng = np.random.default_rng(ROTATION_SEED)
    q, r = np.linalg.qr(rng.standard_normal((x.shape[1], x.shape[1])))
    q *= np.sign(np.diag(r))
    return np.ascontiguousarray(np.hstack([x, x @ q.astype(np.float32)]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--model", help="a compressae model file (d = 768, h = 4096, k = 32) instead of training")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=None)
    ap.add_argument("--save-model", default=None, help="where to save the trained model")
    ap.add_argument("--library-note", default="")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    date = _dt.datetime.now().strftime("%Y-%m-%d")
    out = Path(args.out) if args.out else HERE / "results" / f"retrieval-768-{date}.md"
    started = time.perf_counter()
    load_before = os.getloadavg()

    data = Path(args.data)
    X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
    query_rows = np.load(data / "wordnet_split_queries.npy")
    mask = np.ones(len(X), dtype=bool)
    mask[query_rows] = False
    X768 = rows_768(X)
    catalogue, queries = X768[mask], X768[query_rows]
    log(f"data: catalogue {catalogue.shape}, queries {queries.shape}")
    t0 = time.perf_counter()
    _, truth = compressae.exact_search(catalogue, queries, n=TOP)
    log(f"ground truth (exact_search, 768-d) in {time.perf_counter() - t0:.0f} s")

    if args.model:
        model = compressae.CompresSAE.load(args.model)
        model_note = f"loaded from {args.model}"
    else:
        log(f"training d=768 h={H} k={K}, default recipe, {args.epochs} epochs...")
        model = compressae.CompresSAE(768, latent_dim=H, k=K, seed=0)
        t0 = time.perf_counter()
        model.fit(catalogue, epochs=args.epochs, seed=0, progress=True)
        seconds = time.perf_counter() - t0
        model_note = (f"trained here: the default recipe, {args.epochs} epochs at most "
                      f"({len(model.history_)} steps, {seconds:.0f} s, final loss {model.history_[-1]:.4f})")
        if args.save_model:
            model.save(args.save_model)
    if (model.input_dim, model.latent_dim, model.k) != (768, H, K):
        raise SystemExit(f"the model must have d = 768, h = {H}, k = {K}")

    recon = compressae.SparseIndex(model, mode="reconstructed")
    t0 = time.perf_counter()
    recon.add(catalogue)  # dense rows: encoded with refitted values
    recon_build = time.perf_counter() - t0
    sparse = compressae.SparseIndex(model, mode="sparse")
    t0 = time.perf_counter()
    sparse.add(model.encode(catalogue))
    sparse_build = time.perf_counter() - t0
    query_codes = model.encode(queries)
    refitted_queries = model.encode(queries, refit=True)

    # Bytes per vector are read after the searches: an index builds its
    # search structure (posting lists) at the first search after an add.
    methods = {
        "compressae reconstructed, refitted codes as queries":
            (lambda t: recon.search(refitted_queries, n=TOP, num_threads=t), lambda: recon.nbytes / len(catalogue)),
        "compressae asymmetric (dense queries)":
            (lambda t: recon.search(queries, n=TOP, num_threads=t), lambda: recon.nbytes / len(catalogue)),
        "compressae sparse, k-code queries":
            (lambda t: sparse.search(query_codes, n=TOP, num_threads=t), lambda: sparse.nbytes / len(catalogue)),
    }
    if faiss is not None:
        flat = faiss.IndexFlatIP(768)
        flat.add(unit_rows(catalogue))
        unit_queries = unit_rows(queries)

        def faiss_search(t):
            faiss.omp_set_num_threads(t)
            return flat.search(unit_queries, TOP)
        methods["faiss IndexFlatIP (dense float32)"] = (faiss_search, lambda: 768 * 4.0)
    else:
        log("faiss is not installed: pip install faiss-cpu (its rows are left out)")

    rows = []
    for t in threads:
        for fn, _ in methods.values():
            fn(t)  # warm-up
        times = {name: [] for name in methods}
        found = {}
        for r in range(args.runs):
            for name, (fn, _) in methods.items():
                t0 = time.perf_counter()
                _, ids = fn(t)
                times[name].append(time.perf_counter() - t0)
                found[name] = ids
            log(f"  threads {t}: round {r + 1}/{args.runs}")
        for name, (_, bytes_per_vector) in methods.items():
            qps = len(queries) / statistics.median(times[name])
            best = len(queries) / min(times[name])
            recall = compressae.recall_at_n(found[name], truth, TOP)
            rows.append((name, t, qps, best, recall, bytes_per_vector()))
            log(f"  {name:55s} t={t}  {qps:8,.0f} q/s (best {best:,.0f})  R@100 {recall:.4f}")

    info = machine()
    lines = [f"# Retrieval on a 768-d set ({_dt.datetime.now().strftime('%Y-%m-%d %H:%M')})", ""]
    lines.append(f"- machine: {info['cpu']}, nproc {info['nproc']}; compressae {compressae.__version__} "
                 f"(commit {info['commit']}){' (' + args.library_note + ')' if args.library_note else ''}; "
                 f"faiss {faiss.__version__ if faiss is not None else 'not installed'}")
    lines.append(f"- load average before / after: {' '.join(f'{v:.2f}' for v in load_before)} / "
                 f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    lines.append(f"- data: {args.data}, rows [x, x @ Q] (Q: fixed random 384 x 384 rotation, numpy seed "
                 f"{ROTATION_SEED}): catalogue {len(catalogue):,} x 768, {len(queries)} queries; truth: exact "
                 f"cosine top-{TOP} of the 768-d rows")
    lines.append(f"- model: d = 768, h = {H}, k = {K}; {model_note}")
    lines.append(f"- index builds: reconstructed (dense rows, refitted) {recon_build:.1f} s, sparse "
                 f"{sparse_build:.1f} s")
    lines.append(f"- qps: all {len(queries)} queries in one call, median of {args.runs} runs (round-robin "
                 f"over the methods) after a warm-up call")
    lines.append(f"- command: `python3 benchmarks/retrieval_768.py {' '.join(sys.argv[1:])}`")
    lines.append(f"- total time: {time.perf_counter() - started:.0f} s")
    lines += ["", "| method | threads | queries/s (median) | best run | Recall@100 | bytes/vector |",
              "|---|---:|---:|---:|---:|---:|"]
    for name, t, qps, best, recall, bpv in rows:
        lines.append(f"| {name} | {t} | {qps:,.0f} | {best:,.0f} | {recall:.4f} | {bpv:,.1f} |")
    lines += ["", "| threads | method | vs faiss IndexFlatIP |", "|---:|---|---:|"]
    by = {(name, t): qps for name, t, qps, _, _, _ in rows}
    for t in threads:
        base = by.get(("faiss IndexFlatIP (dense float32)", t))
        for name in methods:
            if base and not name.startswith("faiss"):
                lines.append(f"| {t} | {name} | {by[(name, t)] / base:.1f}x |")
    write_report("\n".join(lines) + "\n", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
