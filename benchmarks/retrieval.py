#!/usr/bin/env python3
"""Retrieval benchmark: compressae SparseIndex against faiss and scipy.

On the WordNet MiniLM embeddings (``--data``, default /work/shared/data; see
its README): 117,659 x 384 float16 vectors, 1000 held-out query rows
(``wordnet_split_queries.npy``), the exact top-100 catalogue rows of each
query (``wordnet_gt_top100.npy``); the catalogue is every other row
(116,659 items).

1. A compressae model (h = 4096, k = 32) is trained on the catalogue with the
   library's default recipe (at most ``--epochs`` passes, default 100 = the
   library's own cap; it stops at convergence), or loaded from ``--model``.
   A trained model is cached in ``--cache`` (default /tmp) and reused.
2. For each catalogue size N (the real catalogue, then a synthetic one of
   ``--synthetic-n`` items, default 1,000,000) and each thread count
   (``--threads``, default 1 and 2), it measures queries/s (median of
   ``--runs`` = 3 timed runs of all 1000 queries, after an untimed warm-up
   with 32 queries; the runs go round-robin over all methods so that load
   from other processes hits them alike), Recall@100 and bytes per vector of:

   - compressae sparse mode (cosine between codes, inverted index),
     standard and compact storage, queries given as codes;
   - the same with query codes of 4k nonzeros (the index's default
     ``query_k`` for dense queries), encoded beforehand;
   - compressae sparse mode with dense queries (query encoding included;
     the query codes have the default ``query_k`` = 4k nonzeros);
   - compressae reconstructed mode, queries given as codes (decoded), with
     items and queries refitted by least squares (``encode(refit=True)``,
     what a reconstructed index stores for dense rows);
   - compressae asymmetric search: reconstructed mode, dense queries;
   - faiss ``IndexFlatIP`` on the L2-normalised dense float32 vectors
     (exact cosine; ``faiss.omp_set_num_threads``), when faiss is installed;
   - scipy.sparse: the item codes as a row-normalised CSR matrix D,
     ``S = Q @ D.T`` (D.T precomputed as CSR, i.e. an inverted index) in
     chunks of queries, then top-100 per query by argpartition + sort.
     scipy's sparse product is single-threaded: it runs at 1 thread only.

   Query codes for the "codes" rows are encoded once, outside the timing
   (their encoding rate is reported separately).
3. The synthetic catalogue: the real catalogue followed by perturbed copies
   of it, ``x' = normalise(x + sigma * e)`` with ``e ~ N(0, I / d)`` (so
   ``|sigma e| ~ sigma``; ``--noise`` sigma, default 0.5, i.e. a copy has
   cosine about 0.89 with its source), one fresh noise draw per copy (numpy
   seed 12345), truncated to ``--synthetic-n`` rows. It is encoded with the
   model; its ground truth is exact_search (numpy float32 brute force) of
   the same 1000 queries over it.

Another data set: ``--dataset PATH`` (a .npy of float rows, e.g. made by
``benchmarks/make_datasets.py``) replaces the shared set: zero rows are
dropped, ``min(1000, rows / 10)`` rows chosen by a seeded permutation
(``--split-seed``, numpy ``default_rng``, the rule of defaults.py) are the
queries, the rest the catalogue, and the truth is each query's exact cosine
top-100 in the catalogue (float32 BLAS, computed here). The model is cached
per data set (its file name carries the set's name).

Exact dense search has a second peer besides faiss: numpy, the catalogue's
L2-normalised float32 rows times the normalised queries (``Q @ X.T`` by
BLAS, in chunks of queries of at most 2^23 scores, at the measured thread
count through threadpoolctl) and the top-100 of each row by argpartition +
sort. The ratio table compares compressae with the faster of the two at the
same thread count ("exact dense peer"). Dead latents (latents in no item's
code; and the last training window's fraction when the model was trained in
this run) and the posting-list work of sparse mode are printed per size.
``--train-only`` trains (or finds) the cached model and stops, so that the
timed run can hold a benchmark lock without training under it.

Results are printed as markdown and written to ``--out`` (default
benchmarks/results/retrieval-<date>.md), with the machine (lscpu model,
nproc), the date and the load average before and after (other processes on
the machine distort timings: check it).

Run:  python3 benchmarks/retrieval.py [--quick]
``--quick``: the real catalogue only, one thread count (2), 2 epochs of
training if no cached model (under 3 minutes).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent

try:
    import compressae
except ImportError:  # a development checkout without `pip install ./python`
    sys.path.insert(0, str(REPO / "python"))
    import compressae

try:
    import scipy.sparse
except ImportError:
    scipy = None

try:
    import faiss
except ImportError:
    faiss = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

H, K = 4096, 32
TOP = 100


# ---------------------------------------------------------------- helpers

def log(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def machine() -> dict:
    info = {"cpu": platform.processor() or platform.machine(), "nproc": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        info["nproc"] = int(subprocess.run(["nproc"], capture_output=True, text=True).stdout)
    except (OSError, ValueError):
        pass
    try:
        info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                        capture_output=True, text=True).stdout.strip()
    except OSError:
        info["commit"] = "?"
    return info


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


def write_report(text: str, out: Path) -> None:
    """Prints the report and writes it to `out`."""
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    log(f"written to {out}")


def to_rows(ids: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    """Index positions -> row numbers of the full data set (-1 stays -1)."""
    if rows is None:
        return ids
    return np.where(ids >= 0, rows[np.maximum(ids, 0)], -1)


# ---------------------------------------------------------------- model

def get_model(args, catalogue: np.ndarray, set_name: str = "wordnet"):
    if args.model:
        log(f"model: loading {args.model}")
        return compressae.CompresSAE.load(args.model), f"loaded from {args.model}"
    epochs = args.epochs
    prefix = "" if set_name == "wordnet" else f"{set_name}-"
    cache = Path(args.cache) / f"compressae-retrieval-{prefix}h{H}-k{K}-default-recipe-max{epochs}-seed0.safetensors"
    if cache.is_file():
        log(f"model: cached {cache}")
        note_file = cache.with_suffix(".txt")
        note = f"; {note_file.read_text().strip()}" if note_file.is_file() else ""
        return compressae.CompresSAE.load(cache), f"cached {cache.name}{note}"
    log(f"model: training h={H} k={K}, the library's default recipe, at most {epochs} epochs...")
    model = compressae.CompresSAE(catalogue.shape[1], latent_dim=H, k=K, seed=0)
    t0 = time.perf_counter()
    model.fit(catalogue, epochs=epochs, seed=0, progress=True)
    steps = len(model.history_)
    seconds = time.perf_counter() - t0
    model.save(cache)
    dead = float(model.dead_latents_[-1]) if len(model.dead_latents_) else float("nan")
    log(f"model: trained in {seconds:.0f} s, final loss {model.history_[-1]:.4f}, dead latents "
        f"(last training window) {dead:.1%}; cached {cache}")
    note = (f"trained here: the default recipe, {len(model.validation_loss_)} epochs, {steps} steps, "
            f"{seconds:.0f} s, final loss {model.history_[-1]:.4f}, dead latents over the last "
            f"training window {dead:.2%}")
    cache.with_suffix(".txt").write_text(note + "\n")
    return model, note


# ---------------------------------------------------------------- synthetic

def synthetic_catalogue(catalogue: np.ndarray, n: int, sigma: float) -> np.ndarray:
    """The catalogue, then perturbed copies of it, n rows in all (float32, unit rows)."""
    d = catalogue.shape[1]
    rng = np.random.default_rng(12345)
    out = np.empty((n, d), dtype=np.float32)
    base = unit_rows(catalogue)
    out[:min(n, len(base))] = base[:n]
    filled = min(n, len(base))
    chunk = 65536
    while filled < n:
        for start in range(0, len(base), chunk):
            if filled >= n:
                break
            rows = base[start:start + min(chunk, n - filled)]
            noise = rng.standard_normal(rows.shape, dtype=np.float32) * np.float32(sigma / np.sqrt(d))
            out[filled:filled + len(rows)] = unit_rows(rows + noise)
            filled += len(rows)
    return out


# ---------------------------------------------------------------- methods

def scipy_search(q_csr, items_t_csr, n: int, chunk: int):
    """Top-n of Q @ D.T by chunks of queries (dense rows + argpartition)."""
    nq = q_csr.shape[0]
    scores = np.empty((nq, n), dtype=np.float32)
    ids = np.empty((nq, n), dtype=np.int64)
    for q0 in range(0, nq, chunk):
        block = (q_csr[q0:q0 + chunk] @ items_t_csr).toarray()
        part = np.argpartition(-block, n - 1, axis=1)[:, :n]
        s = np.take_along_axis(block, part, axis=1)
        order = np.argsort(-s, axis=1, kind="stable")
        ids[q0:q0 + chunk] = np.take_along_axis(part, order, axis=1)
        scores[q0:q0 + chunk] = np.take_along_axis(s, order, axis=1)
    return scores, ids


def numpy_search(qn: np.ndarray, xn: np.ndarray, n: int, threads: int):
    """Exact top-n by inner product of unit rows: BLAS ``Q @ X.T`` by chunks of
    queries, then argpartition + sort (ties in argsort's order)."""
    nq, N = qn.shape[0], xn.shape[0]
    chunk = max(1, min(nq, 2**23 // N))
    scores = np.empty((nq, n), dtype=np.float32)
    ids = np.empty((nq, n), dtype=np.int64)
    xt = xn.T

    def run():
        for q0 in range(0, nq, chunk):
            block = qn[q0:q0 + chunk] @ xt
            part = np.argpartition(-block, n - 1, axis=1)[:, :n]
            s = np.take_along_axis(block, part, axis=1)
            order = np.argsort(-s, axis=1, kind="stable")
            ids[q0:q0 + chunk] = np.take_along_axis(part, order, axis=1)
            scores[q0:q0 + chunk] = np.take_along_axis(s, order, axis=1)

    if threadpool_limits is None:
        run()
    else:
        with threadpool_limits(limits=threads, user_api="blas"):
            run()
    return scores, ids


def run_size(name, model, items, item_codes, queries, query_codes, long_query_codes, gt_rows, id_rows,
             thread_counts, runs, results, normalised=False, want_scipy=True, want_faiss=True,
             refitted=None, want_numpy=True, compact=True, cost_buckets=0, query_ks=()):
    """Benchmark every method at one catalogue size; append rows to `results`.

    ``long_query_codes``: the queries' codes of 4k nonzeros (the sparse
    index's default for dense queries). ``refitted`` = (item codes, query
    codes) with least-squares values
    (``encode(refit=True)``): what a reconstructed index stores when it encodes
    dense rows itself; the reconstructed and asymmetric rows use them."""
    N = items.shape[0]
    nq = queries.shape[0]
    log(f"\n== {name}: N = {N:,} items, {nq} queries ==")
    # What the inverted index has to scan: the posting lists of each query's k latents.
    h, k = model.latent_dim, item_codes.k
    counts = np.bincount(item_codes.indices.ravel(), minlength=h)
    scanned = counts[query_codes.indices].sum(axis=1)
    scanned_long = counts[long_query_codes.indices].sum(axis=1)
    dead = int((counts == 0).sum())
    top_latents = np.argsort(counts)[::-1][:max(1, h // 100)]
    in_top = np.isin(query_codes.indices, top_latents)
    top_share_scanned = (counts[query_codes.indices] * in_top).sum() / max(scanned.sum(), 1)
    skew_note = (f" The {len(top_latents)} longest lists (1% of the latents) hold "
                 f"{counts[top_latents].sum() / max(counts.sum(), 1):.1%} of all entries and "
                 f"{top_share_scanned:.1%} of the entries the k-code queries scan "
                 f"({in_top.sum(axis=1).mean():.1f} of a query's {k} latents are among them).")
    results.append(dict(size=name, N=N, stats=(
        f"dead latents (in no item's code): {dead} of {h} = {dead / h:.2%}; posting lists touched "
        f"per query: mean length {scanned.mean() / k:,.0f} entries over its {k} latents with k-code "
        f"queries (the mean list is N k / h = {N * k / h:,.0f}), {scanned_long.mean() / (4 * k):,.0f} "
        f"over {4 * k} latents with 4k-code queries. "
        f"sparse-mode work: a query scans {scanned.mean():,.0f} posting entries on average "
        f"({scanned.mean() / N:.2f} N; median {np.median(scanned):,.0f}, max {scanned.max():,}); "
        f"{int((counts > 0).sum())} of {h} latents in use, longest list {counts.max():,} "
        f"({counts.max() / N:.1%} of the items); uniform use of all latents would give "
        f"N k^2 / h = {N * k * k / h:,.0f}; with query codes of 4k nonzeros a query scans "
        f"{scanned_long.mean():,.0f} ({scanned_long.mean() / N:.2f} N)." + skew_note)))
    log("  " + results[-1]["stats"])

    # Every method is built first; then the timed runs go round-robin over
    # all of them (round 1 of every method, then round 2, ...), so that a
    # burst of load from other processes hits all methods alike instead of
    # one method's every run.
    methods = []  # dicts: method, storage, queries, threads, fn(m), nbytes, build, note

    def add_method(method, storage, qkind, threads, fn, nbytes, build, note=""):
        methods.append(dict(method=method, storage=storage, queries=qkind, threads=threads,
                            fn=fn, nbytes=nbytes, build=build, note=note))

    keep = []  # objects the closures need
    configs = [("sparse", "standard"), ("sparse", "compact"),
               ("reconstructed", "standard"), ("reconstructed", "compact")]
    if not compact:
        configs = [c for c in configs if c[1] != "compact"]
    for mode, storage in configs:
        t0 = time.perf_counter()
        index = compressae.SparseIndex(model, mode=mode, storage=storage)
        items_here, queries_here = (item_codes, query_codes) if mode == "sparse" or refitted is None \
            else refitted
        index.add(items_here)
        index.search(queries_here[:1], n=TOP)  # builds the posting lists (sparse mode)
        build = time.perf_counter() - t0
        keep.append(index)
        if (mode, storage) == ("sparse", "standard"):
            sparse_index = index
        for t in thread_counts:
            def codes_fn(m, index=index, t=t, codes=queries_here):
                return index.search(codes[:m], n=TOP, num_threads=t)

            def dense_fn(m, index=index, t=t):
                return index.search(queries[:m], n=TOP, num_threads=t)

            if mode == "sparse":
                add_method("compressae sparse", storage, "codes", t, codes_fn, index.nbytes, build)
                if storage == "standard":
                    def long_codes_fn(m, index=index, t=t):
                        return index.search(long_query_codes[:m], n=TOP, num_threads=t)
                    add_method("compressae sparse", storage, "codes 4k", t, long_codes_fn, index.nbytes, build,
                               f"query codes of {4 * k} nonzeros (encoded beforehand), items of {k}")
                if storage == "standard":
                    add_method("compressae sparse", storage, "dense", t, dense_fn, index.nbytes, build,
                               f"query encoding included; query codes of {4 * k} nonzeros (query_k default 4k)")
                    for qk in query_ks:
                        def qk_fn(m, index=index, t=t, qk=qk):
                            return index.search(queries[:m], n=TOP, num_threads=t, query_k=qk)
                        add_method("compressae sparse", storage, f"dense qk={qk}", t, qk_fn, index.nbytes, build,
                                   f"query encoding included; query_k = {qk}")
            else:
                refit_note = "refitted codes" if refitted is not None else "encoder codes"
                add_method("compressae reconstructed", storage, "codes", t, codes_fn, index.nbytes,
                           build, refit_note)
                add_method("compressae asymmetric", storage, "dense", t, dense_fn, index.nbytes, build,
                           f"reconstructed mode, dense queries; {refit_note}")

    if want_faiss and faiss is None:
        log("  faiss: not installed (pip install faiss-cpu): skipped")
        results.append(dict(size=name, N=N, method="faiss IndexFlatIP", skip="faiss not installed"))
    elif want_faiss:
        t0 = time.perf_counter()
        flat = faiss.IndexFlatIP(items.shape[1])
        flat.add(items if normalised else unit_rows(items))
        build = time.perf_counter() - t0
        qn = unit_rows(queries)
        keep.append(flat)
        for t in thread_counts:
            def faiss_fn(m, t=t):
                faiss.omp_set_num_threads(t)
                return flat.search(qn[:m], TOP)

            add_method("faiss IndexFlatIP", "float32", "dense", t, faiss_fn,
                       4 * items.shape[1] * N, build)

    if want_numpy:
        t0 = time.perf_counter()
        xn = items if normalised else unit_rows(items)
        xn = np.ascontiguousarray(xn, dtype=np.float32)
        build = time.perf_counter() - t0
        qn_np = unit_rows(queries)
        keep.append(xn)
        for t in thread_counts:
            def numpy_fn(m, t=t):
                return numpy_search(qn_np[:m], xn, TOP, t)

            add_method("numpy BLAS exact", "float32", "dense", t, numpy_fn, 4 * items.shape[1] * N, build,
                       "Q @ X.T (unit rows) + argpartition top-100"
                       + ("" if threadpool_limits else "; threadpoolctl missing: BLAS threads not set"))

    if want_scipy and scipy is None:
        log("  scipy: not installed: skipped")
        results.append(dict(size=name, N=N, method="scipy.sparse", skip="scipy not installed"))
    elif want_scipy:
        t0 = time.perf_counter()
        D = item_codes.to_csr()
        norms = np.sqrt(np.asarray(D.multiply(D).sum(axis=1)).ravel())
        D = scipy.sparse.diags(1 / np.where(norms > 0, norms, 1)).astype(np.float32) @ D
        DT = D.T.tocsr()
        build = time.perf_counter() - t0
        nbytes = D.data.nbytes + D.indices.nbytes + D.indptr.nbytes
        del D
        Q = query_codes.to_csr()
        qnorms = np.sqrt(np.asarray(Q.multiply(Q).sum(axis=1)).ravel())
        Q = (scipy.sparse.diags(1 / qnorms).astype(np.float32) @ Q).tocsr()
        chunk = max(1, min(nq, 2**25 // N))
        keep.append(DT)

        def scipy_fn(m):
            return scipy_search(Q[:m], DT, TOP, chunk)

        add_method("scipy.sparse (sparse space)", "CSR f32", "codes", 1, scipy_fn, nbytes, build,
                   "single-threaded")

    for entry in methods:  # warm-up: thread pools, first-touch page faults
        entry["fn"](32)
    times = {i: [] for i in range(len(methods))}
    found = {}
    for r in range(runs):
        log(f"  round {r + 1}/{runs}")
        for i, entry in enumerate(methods):
            gc.collect()
            t0 = time.perf_counter()
            _, ids = entry["fn"](None)
            times[i].append(time.perf_counter() - t0)
            found[i] = ids
    if faiss is not None:
        faiss.omp_set_num_threads(os.cpu_count() or 1)

    if cost_buckets > 0:
        # Where sparse mode's time goes: the queries sorted by the posting
        # entries they scan, cut into buckets; each bucket searched as one
        # call (k-code queries, standard storage, 1 thread), interleaved over
        # `runs` rounds; per-query time = fixed + per-entry * entries by least
        # squares. `fixed` holds what does not grow with the lists: the tile
        # scans of the N accumulators, the heap, the call.
        order = np.argsort(scanned, kind="stable")
        buckets = np.array_split(order, cost_buckets)
        bucket_times = [[] for _ in buckets]
        sparse_index.search(query_codes[buckets[0][:8]], n=TOP, num_threads=1)
        for _ in range(runs):
            for b, rows in enumerate(buckets):
                sub = query_codes[rows]
                t0 = time.perf_counter()
                sparse_index.search(sub, n=TOP, num_threads=1)
                bucket_times[b].append((time.perf_counter() - t0) / len(rows))
        # The floor: the same query values on the k rarest latents (each
        # query's latents replaced), so that the lists add next to nothing
        # and what is left is the tile scans, the heap and the call.
        rare = np.argsort(counts, kind="stable")[:k].astype(query_codes.indices.dtype)
        floor_codes = compressae.SparseCodes(np.tile(rare, (nq, 1)), query_codes.values.copy(), dim=h)
        floor_times = []
        sparse_index.search(floor_codes[:8], n=TOP, num_threads=1)
        for _ in range(runs):
            t0 = time.perf_counter()
            sparse_index.search(floor_codes, n=TOP, num_threads=1)
            floor_times.append((time.perf_counter() - t0) / nq)
        floor_note = (f" Floor: queries on the {k} rarest latents ({int(counts[rare].sum()):,} entries): "
                      f"{statistics.median(floor_times) * 1e6:.1f} us/query.")
        x = np.array([scanned[rows].mean() for rows in buckets])
        y = np.array([statistics.median(ts) for ts in bucket_times])
        slope, intercept = np.polyfit(x, y, 1)
        fit = intercept + slope * x
        r2 = 1 - ((y - fit) ** 2).sum() / max(((y - y.mean()) ** 2).sum(), 1e-30)
        mean_entries = scanned.mean()
        results.append(dict(size=name, N=N, stats=(
            f"sparse-mode cost model (k-code queries, 1 thread, {cost_buckets} buckets of queries by "
            f"posting entries scanned, median of {runs} rounds): per query {intercept * 1e6:.1f} us fixed + "
            f"{slope * 1e9:.2f} ns per posting entry (R^2 {r2:.3f}); at the mean {mean_entries:,.0f} entries: "
            f"{intercept * 1e6:.1f} us fixed + {slope * mean_entries * 1e6:.1f} us lists = "
            f"{(intercept + slope * mean_entries) * 1e6:.1f} us; the fixed part per item "
            f"{intercept / N * 1e9:.2f} ns. Buckets (entries, us/query): "
            + ", ".join(f"({xi:,.0f}, {yi * 1e6:.1f})" for xi, yi in zip(x, y)) + "." + floor_note)))
        log("  " + results[-1]["stats"])

    for i, entry in enumerate(methods):
        recall = compressae.recall_at_n(to_rows(found[i], id_rows), gt_rows, n=TOP)
        seconds = statistics.median(times[i])
        row = dict(size=name, N=N, method=entry["method"], storage=entry["storage"],
                   queries=entry["queries"], threads=entry["threads"], qps=nq / seconds,
                   best_qps=nq / min(times[i]), recall=recall, bpv=entry["nbytes"] / N,
                   build=entry["build"], note=entry["note"])
        results.append(row)
        log(f"  {row['method']:<28} {row['storage']:<9} {row['queries']:<6} t={row['threads']}  "
            f"{row['qps']:>9,.0f} q/s (best {row['best_qps']:,.0f})  R@100 {recall:.4f}  "
            f"{row['bpv']:.1f} B/vec")
    for obj in keep:
        if isinstance(obj, compressae.SparseIndex):
            obj.close()
    del keep, methods
    gc.collect()


# ---------------------------------------------------------------- report

def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def report(results, info, args, model_note, extra) -> str:
    lines = []
    now = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines.append(f"# Retrieval benchmark ({now})\n")
    lines.append(f"- machine: {info['cpu']}, nproc {info['nproc']}; compressae "
                 f"{compressae.library_version()} (commit {info.get('commit', '?')}), BLAS "
                 f"{compressae.blas_name()}; numpy {np.__version__}"
                 + (f", scipy {scipy.__version__}" if scipy else "")
                 + (f", faiss {faiss.__version__}" if faiss else ", faiss not installed")
                 + f"; library {compressae.library_path}"
                 + (f" ({args.library_note})" if args.library_note else ""))
    lines.append(f"- load average before / after: {extra['load_before']} / {extra['load_after']} "
                 "(other processes on the machine distort timings)")
    lines.append(f"- model: h = {H}, k = {K}; {model_note}")
    lines.append(f"- data: {extra['data']}: catalogue {extra['catalogue']:,} x {extra['dim']}, "
                 f"{extra['queries']} held-out queries, Recall@100 against the exact top-100 "
                 "(cosine on the dense vectors)")
    if "synthetic" in extra:
        lines.append(f"- synthetic catalogue: {extra['synthetic']}")
    lines.append(f"- qps: all {extra['queries']} queries in one call, median of {args.runs} runs after "
                 "a 32-query warm-up (runs go round-robin over the methods; `best run` = the "
                 "fastest); `codes` = queries given as codes (encoded beforehand, at "
                 f"{extra['encode_qps']:,.0f} queries/s with the default threads), `dense` = "
                 "dense float32 queries")
    lines.append(f"- total benchmark time: {extra['elapsed']:.0f} s\n")

    for size in dict.fromkeys(r["size"] for r in results):
        rows = [r for r in results if r["size"] == size]
        N = next(r["N"] for r in rows)
        lines.append(f"## {size}: N = {N:,}\n")
        for r in rows:
            if "stats" in r:
                lines.append(f"{r['stats']}\n")
        rows = [r for r in rows if "stats" not in r]
        lines.append("| method | storage | queries | threads | queries/s (median) | best run | Recall@100 | bytes/vector | build s | note |")
        lines.append("|---|---|---|---:|---:|---:|---:|---:|---:|---|")
        for r in rows:
            if "skip" in r:
                lines.append(f"| {r['method']} | - | - | - | - | - | - | - | - | skipped: {r['skip']} |")
                continue
            lines.append(f"| {r['method']} | {r['storage']} | {r['queries']} | {r['threads']} | "
                         f"{r['qps']:,.0f} | {r['best_qps']:,.0f} | {r['recall']:.4f} | {fmt(r['bpv'], ',.1f')} | "
                         f"{fmt(r['build'], '.2f')} | {r['note']} |")
        lines.append("")

        def qps(method, storage, queries, threads):
            for r in rows:
                if (r.get("method"), r.get("storage"), r.get("queries"), r.get("threads")) == \
                        (method, storage, queries, threads):
                    return r["qps"]
            return None

        ratio_lines = []
        threads = sorted({r["threads"] for r in rows if "threads" in r})
        for t in threads:
            # The exact dense peer: the faster of faiss and numpy at t threads.
            peers = [(q, m) for q, m in ((qps("faiss IndexFlatIP", "float32", "dense", t), "faiss IndexFlatIP"),
                                         (qps("numpy BLAS exact", "float32", "dense", t), "numpy BLAS exact"))
                     if q is not None]
            if peers:
                peer_qps, peer_name = max(peers)
                peer_name = f"exact dense peer ({peer_name})"
                for method, storage, qkind, target in [
                        ("compressae sparse", "standard", "codes", 5),
                        ("compressae sparse", "standard", "codes 4k", None),
                        ("compressae sparse", "standard", "dense", None)] + [
                        ("compressae sparse", "standard", q, None) for q in dict.fromkeys(
                            r.get("queries", "") for r in rows) if q.startswith("dense qk=")] + [
                        ("compressae reconstructed", "standard", "codes", None),
                        ("compressae asymmetric", "standard", "dense", None)]:
                    mine = qps(method, storage, qkind, t)
                    if mine is None:
                        continue
                    ratio = mine / peer_qps
                    verdict = "-" if target is None else (
                        f">= {target}x: met" if ratio >= target else
                        f">= {target}x: MISSED (at {ratio / target:.0%} of target)")
                    ratio_lines.append(f"| {t} | {method} ({storage}, {qkind} queries) | {peer_name} | "
                                       f"{ratio:.1f}x | {verdict} |")
            faiss_qps = qps("faiss IndexFlatIP", "float32", "dense", t)
            scipy_qps = qps("scipy.sparse (sparse space)", "CSR f32", "codes", 1)
            checks = [
                ("compressae sparse", "standard", "codes", faiss_qps, "faiss IndexFlatIP", 10),
                ("compressae sparse", "standard", "dense", faiss_qps, "faiss IndexFlatIP", None),
                # scipy runs at 1 thread: the target applies at 1 thread only.
                ("compressae sparse", "standard", "codes", scipy_qps, "scipy.sparse (1 thread)",
                 5 if t == 1 else None),
                ("compressae reconstructed", "standard", "codes", faiss_qps, "faiss IndexFlatIP", 2),
                ("compressae asymmetric", "standard", "dense", faiss_qps, "faiss IndexFlatIP", 2),
                ("compressae sparse", "compact", "codes", faiss_qps, "faiss IndexFlatIP", None),
                ("compressae reconstructed", "compact", "codes", faiss_qps, "faiss IndexFlatIP", None),
            ]
            for method, storage, qkind, base, base_name, target in checks:
                mine = qps(method, storage, qkind, t)
                if mine is None or base is None:
                    continue
                ratio = mine / base
                verdict = "-" if target is None else (
                    f">= {target}x: met" if ratio >= target else
                    f">= {target}x: MISSED (at {ratio / target:.0%} of target)")
                ratio_lines.append(f"| {t} | {method} ({storage}, {qkind} queries) | {base_name} | "
                                   f"{ratio:.1f}x | {verdict} |")
        if ratio_lines:
            lines.append(f"Speed ratios at N = {N:,} (same thread count; scipy always at 1 thread):\n")
            lines.append("| threads | compressae | vs | ratio | target |")
            lines.append("|---:|---|---|---:|---|")
            lines.extend(ratio_lines)
            lines.append("")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="/work/shared/data")
    parser.add_argument("--model", help="a compressae model file (h=4096, k=32) instead of training")
    parser.add_argument("--cache", default="/tmp", help="directory of the cached trained model")
    parser.add_argument("--epochs", type=int, default=None,
                        help="most training epochs over the catalogue (default 100; 2 with --quick)")
    parser.add_argument("--threads", default=None,
                        help="comma-separated thread counts (default '1,2'; '2' with --quick)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--synthetic-n", type=int, default=1_000_000,
                        help="items of the synthetic catalogue (0: skip it)")
    parser.add_argument("--noise", type=float, default=0.5,
                        help="sigma of the synthetic copies' noise (|noise| ~ sigma)")
    parser.add_argument("--quick", action="store_true",
                        help="real catalogue only, one thread count: under 3 minutes")
    parser.add_argument("--dataset", default=None,
                        help="a .npy of rows to use instead of the shared set (queries split off by "
                             "--split-seed, truth computed here)")
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--no-scipy", action="store_true", help="skip the scipy.sparse row")
    parser.add_argument("--no-compact", action="store_true", help="skip the compact-storage rows")
    parser.add_argument("--cost-buckets", type=int, default=0,
                        help="fit sparse mode's per-query time as fixed + per posting entry over this "
                             "many buckets of queries (0: skip)")
    parser.add_argument("--query-ks", default="",
                        help="comma-separated query_k values: extra sparse-mode rows with dense queries "
                             "encoded at that query_k")
    parser.add_argument("--train-only", action="store_true",
                        help="train (or find) the cached model and the truth, then stop")
    parser.add_argument("--out", default=None)
    parser.add_argument("--library-note", default="",
                        help="free text about the library under test, printed in the report")
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 2 if args.quick else 100
    if args.threads is None:
        args.threads = "2" if args.quick else "1,2"
    if args.quick:
        args.synthetic_n = 0
    thread_counts = [int(t) for t in args.threads.split(",")]
    date = _dt.date.today().isoformat()
    out = Path(args.out) if args.out else HERE / "results" / (
        f"retrieval-{date}{'-quick' if args.quick else ''}.md")

    started = time.perf_counter()
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    info = machine()
    if args.dataset:
        set_name = Path(args.dataset).stem
        X = np.load(args.dataset).astype(np.float32)
        X = X[np.linalg.norm(X, axis=1) > 0]
        nq = min(1000, len(X) // 10)
        perm = np.random.default_rng(args.split_seed).permutation(len(X))
        query_rows, catalogue_rows = np.sort(perm[:nq]), np.sort(perm[nq:])
        catalogue, queries = X[catalogue_rows], X[query_rows]
        truth_file = Path(args.cache) / f"retrieval-truth-{set_name}-split{args.split_seed}.npy"
        if truth_file.is_file():
            gt = np.load(truth_file)
        else:
            t0 = time.perf_counter()
            _, gt = numpy_search(unit_rows(queries), unit_rows(catalogue), TOP, os.cpu_count() or 1)
            np.save(truth_file, gt)
            log(f"truth: exact cosine top-{TOP} in {time.perf_counter() - t0:.0f} s, cached {truth_file}")
        catalogue_rows = None  # the truth holds catalogue positions
        data_note = (f"{args.dataset} ({len(X):,} nonzero rows; {nq} queries by "
                     f"numpy default_rng({args.split_seed}).permutation, the rest the catalogue; "
                     "truth computed here)")
    else:
        set_name = "wordnet"
        data = Path(args.data)
        X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
        query_rows = np.load(data / "wordnet_split_queries.npy")
        gt = np.load(data / "wordnet_gt_top100.npy")
        mask = np.ones(len(X), dtype=bool)
        mask[query_rows] = False
        catalogue_rows = np.nonzero(mask)[0]
        catalogue = X[catalogue_rows]
        queries = X[query_rows]
        data_note = str(args.data)
    log(f"data: {len(X):,} rows, catalogue {len(catalogue):,}, queries {len(queries)}")

    model, model_note = get_model(args, catalogue, set_name)
    if args.train_only:
        log(f"--train-only: {model_note}")
        return 0
    if (model.latent_dim, model.k) != (H, K):
        log(f"note: the model has h={model.latent_dim}, k={model.k} (benchmark default {H}/{K})")
    model_note = f"{model_note}; model h = {model.latent_dim}, k = {model.k}"

    t0 = time.perf_counter()
    query_codes = model.encode(queries)
    encode_qps = len(queries) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    item_codes = model.encode(catalogue)
    log(f"encoded the catalogue in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    refitted_queries = model.refit(queries, query_codes)
    refitted = (model.refit(catalogue, item_codes), refitted_queries)
    long_query_codes = model.encode(queries, k=min(model.latent_dim, 4 * model.k))
    log(f"refitted the catalogue's and queries' codes in {time.perf_counter() - t0:.1f} s")

    results = []
    extra = dict(catalogue=len(catalogue), queries=len(queries), encode_qps=encode_qps,
                 load_before=load_before, data=data_note, dim=catalogue.shape[1])
    run_size("real catalogue", model, catalogue, item_codes, queries, query_codes, long_query_codes, gt,
             catalogue_rows, thread_counts, args.runs, results, refitted=refitted,
             want_scipy=not args.no_scipy, compact=not args.no_compact,
             cost_buckets=args.cost_buckets,
             query_ks=[int(v) for v in args.query_ks.split(",") if v])

    if args.synthetic_n > 0:
        del item_codes, refitted
        t0 = time.perf_counter()
        synth = synthetic_catalogue(catalogue, args.synthetic_n, args.noise)
        t_make = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth_codes = model.encode(synth)
        t_encode = time.perf_counter() - t0
        t0 = time.perf_counter()
        synth_refitted = (model.refit(synth, synth_codes), refitted_queries)
        t_refit = time.perf_counter() - t0
        t0 = time.perf_counter()
        _, synth_gt = compressae.exact_search(synth, queries, n=TOP)
        t_gt = time.perf_counter() - t0
        log(f"synthetic: made in {t_make:.0f} s, encoded in {t_encode:.0f} s, "
            f"ground truth (exact_search) in {t_gt:.0f} s")
        copies = args.synthetic_n / len(catalogue)
        extra["synthetic"] = (
            f"{args.synthetic_n:,} rows = the real catalogue + perturbed copies "
            f"(x' = normalise(x + sigma e), e ~ N(0, I/d), sigma = {args.noise}: "
            f"cos(x, x') ~ {1 / np.sqrt(1 + args.noise ** 2):.2f}; {copies:.1f} copies "
            f"of each item in all, numpy seed 12345); encoded in {t_encode:.0f} s, refitted in {t_refit:.0f} s; "
            f"ground truth: exact_search of the same queries ({t_gt:.0f} s)")
        run_size("synthetic catalogue", model, synth, synth_codes, queries, query_codes, long_query_codes,
                 synth_gt, None, thread_counts, args.runs, results, normalised=True,
                 refitted=synth_refitted, want_scipy=not args.no_scipy, compact=not args.no_compact,
             cost_buckets=args.cost_buckets,
             query_ks=[int(v) for v in args.query_ks.split(",") if v])

    extra["elapsed"] = time.perf_counter() - started
    extra["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    write_report(report(results, info, args, model_note, extra), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
