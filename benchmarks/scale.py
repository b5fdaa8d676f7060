#!/usr/bin/env python3
"""Scale benchmark: compressae's indexes against faiss at 1M and 10M items.

Catalogues of ``--sizes`` items (default 1,000,000 and 10,000,000) are
synthesised from the shared WordNet MiniLM data (``--data``, default
/work/shared/data: 117,659 x 384 float16, a fixed split of 1,000 held-out
queries; the other 116,659 rows are the base catalogue):

- Row r < 116,659 is base row r (L2-normalised float32). Every later row is a
  perturbed copy of base row ``r mod 116,659``: ``x' = normalise(x + sigma e)``
  with ``e ~ N(0, I / d)`` (so ``|sigma e| ~ sigma``), ``--noise`` sigma =
  0.5 (a copy has cosine about 0.89 with its source). Rows are made in
  aligned blocks of 65,536; block b draws its noise from
  ``numpy.random.default_rng([seed, b])`` (``--seed`` 12345), so any block
  can be regenerated alone and the 1M catalogue is the first 1M rows of the
  10M one. The full catalogue is never held in memory as float32.
- Queries: the 1,000 held-out rows under the same rule (one perturbed copy
  each, noise from ``default_rng([seed, -1])``).
- Truth: the exact top-100 of each query by cosine (float32, numpy BLAS
  ``Q @ X.T`` per block, a running top-100), cached in ``--workdir``.

A compressae model (h = 4096, k = 32) is trained once with the library's
default recipe for ``--epochs`` (default 4) epochs on a training sample: every
8th row of the first 1M synthetic rows (125,000 rows: base rows and copies
alike); it is saved in ``--workdir`` and reused. faiss's coarse quantisers
and PQ codebooks train on the same sample (more rows at 10M, see
``--faiss-train``). The catalogue is encoded block by block into memmaps in
``--workdir`` (indices int32, encoder values, least-squares refitted values).

Methods (each built, then timed round-robin with all the others: round 1 of
every method, round 2, ...; the median of ``--runs`` rounds; threads 1 and 2):

- compressae sparse (cosine between k-codes, inverted index), standard and
  compact storage, queries as k-codes (encoded beforehand);
- compressae asymmetric: reconstructed mode with refitted item values, dense
  queries, standard and compact storage;
- when ``SparseIndex.search`` takes a candidate-count knob (``candidates``),
  the same modes at each ``--candidates`` value, with the recall against the
  mode's own exhaustive ranking reported too;
- faiss IVFFlat (nlist ``--nlist``, several nprobe; at nprobe = nlist it is
  exact dense search), IVFPQ (m x 8-bit codes, several m and nprobe) and
  HNSWFlat (M = ``--hnsw-m``, default 32, efConstruction 40, several efSearch). At 10M the dense
  vectors alone are 15 GB in float32, over this benchmark's 8 GB budget:
  IVFFlat and HNSW (which hold them) run at 1M only (``--dense-max``).

Queries per second: ``--queries`` (1,000) queries per round, or fewer for a
method whose single round would exceed ``--round-seconds`` (estimated from an
untimed warm-up); the row says how many. Recall@100 is over all 1,000 queries
unless a full pass would exceed ``--recall-seconds`` (then the stated count).
Bytes per item: the index's own ``nbytes`` / N for compressae; for faiss the
stored codes and ids (IVF: code + 8-byte id per item, plus the centroids and
codebooks spread over N; HNSW: the float32 vectors plus the neighbour links).

Writes ``scale-<date>.md`` (tables, settings, machine, load), ``.csv`` and
``.png`` (Recall@100 against q/s at 1 thread, a frontier per memory budget)
to ``--out-dir`` (default benchmarks/results).

Run:  python3 benchmarks/scale.py --sizes 1000000            # about 40 min on 2 loaded cores
      python3 benchmarks/scale.py --sizes 10000000 --methods-large sparse,asym-compact,ivfpq
Needs numpy, faiss-cpu, matplotlib and the compressae package.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gc
import inspect
import os
import platform
import resource
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
import faiss

H, K = 4096, 32
TOP = 100
BLOCK = 65536


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1)).astype(np.float32, copy=False)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> dict:
    info = {"cpu": platform.machine(), "nproc": os.cpu_count()}
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    info["commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                    capture_output=True, text=True).stdout.strip()
    info["memory"] = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    return info


# ---------------------------------------------------------------- data

class Synth:
    """The synthetic catalogue, made block by block (see the module doc)."""

    def __init__(self, base: np.ndarray, sigma: float, seed: int):
        self.base = unit_rows(base)
        self.nb, self.d = self.base.shape
        self.sigma, self.seed = sigma, seed

    def block(self, b: int) -> np.ndarray:
        """Rows [b * BLOCK, (b + 1) * BLOCK), float32, unit norm."""
        rows = np.arange(b * BLOCK, (b + 1) * BLOCK)
        out = self.base[rows % self.nb]
        copies = rows >= self.nb
        if copies.any():
            rng = np.random.default_rng([self.seed, b])
            noise = rng.standard_normal((int(copies.sum()), self.d), dtype=np.float32)
            noise *= np.float32(self.sigma / np.sqrt(self.d))
            out[copies] = unit_rows(out[copies] + noise)
        return out

    def rows(self, start: int, stop: int):
        """Yields (offset, rows) covering [start, stop) by aligned blocks."""
        for b in range(start // BLOCK, (stop + BLOCK - 1) // BLOCK):
            x = self.block(b)
            lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)
            yield lo, x[lo - b * BLOCK:hi - b * BLOCK]

    def queries(self, q: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 2**31])
        noise = rng.standard_normal(q.shape, dtype=np.float32) * np.float32(self.sigma / np.sqrt(self.d))
        return unit_rows(unit_rows(q) + noise)


def exact_truth(synth: Synth, queries: np.ndarray, n_items: int, path: Path) -> tuple[np.ndarray, float]:
    """Exact cosine top-100 of every query over the first n_items rows (cached)."""
    if path.is_file():
        return np.load(path), float("nan")
    t0 = time.perf_counter()
    nq = len(queries)
    best_s = np.full((nq, TOP), -np.inf, np.float32)
    best_i = np.full((nq, TOP), -1, np.int64)
    for lo, x in synth.rows(0, n_items):
        s = queries @ x.T
        part = np.argpartition(-s, TOP - 1, axis=1)[:, :TOP]
        cs = np.concatenate([best_s, np.take_along_axis(s, part, 1)], 1)
        ci = np.concatenate([best_i, part + lo], 1)
        keep = np.argpartition(-cs, TOP - 1, axis=1)[:, :TOP]
        best_s, best_i = np.take_along_axis(cs, keep, 1), np.take_along_axis(ci, keep, 1)
    order = np.lexsort((best_i, -best_s), axis=1)
    best_i = np.take_along_axis(best_i, order, 1)
    seconds = time.perf_counter() - t0
    np.save(path, best_i)
    log(f"truth over {n_items:,} items: {seconds:.0f} s")
    return best_i, seconds


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return compressae.recall_at_n(found, truth[:len(found)])


# ---------------------------------------------------------------- model and codes

def get_model(synth: Synth, a, workdir: Path):
    path = workdir / f"scale-model-h{H}-k{K}-e{a.epochs}-s{a.seed}.safetensors"
    if path.is_file():
        log(f"model: cached {path}")
        return compressae.CompresSAE.load(path), f"cached {path.name}", train_sample(synth, a)
    sample = train_sample(synth, a)
    log(f"model: training on {len(sample):,} rows, {a.epochs} epochs...")
    model = compressae.CompresSAE(synth.d, latent_dim=H, k=K, seed=0)
    t0 = time.perf_counter()
    model.fit(sample, epochs=a.epochs, seed=0, num_threads=2)
    seconds = time.perf_counter() - t0
    model.save(path)
    log(f"model: {seconds:.0f} s, {len(model.history_)} steps")
    return model, (f"trained here, the default recipe capped at {a.epochs} epochs: "
                   f"{len(model.history_)} steps, {seconds:.0f} s on 2 threads"), sample


def train_sample(synth: Synth, a) -> np.ndarray:
    """Every 8th row of the first 1M synthetic rows."""
    parts = [x[(-lo) % 8::8] for lo, x in synth.rows(0, 1_000_000)]
    return np.ascontiguousarray(np.concatenate(parts))


def encode_catalogue(model, synth: Synth, n: int, workdir: Path) -> tuple[dict, dict]:
    """Codes of the first n rows in memmaps (cached): indices, values, refitted values."""
    names = ("indices", "values", "refit")
    paths = {m: workdir / f"scale-codes-{n}-{m}.npy" for m in names}
    done = workdir / f"scale-codes-{n}.done"
    times = {}
    if not done.is_file():
        out = {m: np.lib.format.open_memmap(paths[m], mode="w+", dtype=np.int32 if m == "indices"
                                            else np.float32, shape=(n, K)) for m in names}
        t_enc = t_refit = t_make = 0.0
        for lo, x in synth.rows(0, n):
            t0 = time.perf_counter()
            x = np.ascontiguousarray(x)
            t1 = time.perf_counter()
            codes = model.encode(x)
            t2 = time.perf_counter()
            refit = model.refit(x, codes)
            t3 = time.perf_counter()
            t_make += t1 - t0
            t_enc += t2 - t1
            t_refit += t3 - t2
            out["indices"][lo:lo + len(x)] = codes.indices
            out["values"][lo:lo + len(x)] = codes.values
            out["refit"][lo:lo + len(x)] = refit.values
            if (lo // BLOCK) % 16 == 0:
                log(f"  encoded {lo + len(x):,} / {n:,} (rss max {rss_gb():.1f} GB)")
        for m in out.values():
            m.flush()
        del out
        times = dict(encode=t_enc, refit=t_refit)
        (done).write_text(f"{t_enc} {t_refit}\n")
    else:
        t_enc, t_refit = map(float, done.read_text().split())
        times = dict(encode=t_enc, refit=t_refit)
    return {m: np.load(paths[m], mmap_mode="r") for m in names}, times


# ---------------------------------------------------------------- methods

class Method:
    def __init__(self, family, name, setting, threads, fn, nbytes, build, note="", exact_of=None):
        self.family, self.name, self.setting, self.threads = family, name, setting, threads
        self.fn, self.nbytes, self.build, self.note = fn, nbytes, build, note
        self.exact_of = exact_of  # key of the exhaustive method whose ranking this approximates
        self.times, self.found, self.m_time, self.m_recall = [], None, None, None


def has_knob(name: str) -> bool:
    return name in inspect.signature(compressae.SparseIndex.search).parameters


def add_codes(index, codes: dict, values: str, n: int) -> None:
    step = 1 << 19
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        index.add((np.ascontiguousarray(codes["indices"][lo:hi]),
                   np.ascontiguousarray(codes[values][lo:hi])))


def faiss_ivf_bytes(index, n: int) -> float:
    ivf = faiss.extract_index_ivf(index)
    extra = ivf.nlist * ivf.d * 4
    if isinstance(ivf, faiss.IndexIVFPQ):
        extra += ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub * 4
    return (ivf.code_size + 8) + extra / n


def hnsw_bytes(index, n: int) -> float:
    h = index.hnsw
    links = h.neighbors.size() * 4 + h.offsets.size() * 8 + h.levels.size() * 4
    return (4 * index.d * n + links) / n


def add_faiss(index, synth: Synth, n: int, threads: int = 2) -> None:
    faiss.omp_set_num_threads(threads)
    for lo, x in synth.rows(0, n):
        index.add(np.ascontiguousarray(x))


def build_methods(a, n, synth, model, codes, enc_times, sample, queries, qcodes, qcodes_refit,
                  threads, large: bool):
    methods = []
    keep = []  # faiss indexes share the coarse quantiser, which must outlive them
    wanted = set((a.methods_large if large else a.methods).split(",")) if (large or a.methods) else None

    def want(tag):
        return wanted is None or tag in wanted

    knob = "candidates" if has_knob("candidates") else None
    cands = [int(c) for c in a.candidates.split(",")] if knob else []
    qdense = queries
    enc_s = enc_times["encode"]
    for mode, storage, tag in (("sparse", "standard", "sparse"), ("sparse", "compact", "sparse-compact"),
                               ("reconstructed", "standard", "asym"),
                               ("reconstructed", "compact", "asym-compact")):
        if not want(tag):
            continue
        t0 = time.perf_counter()
        index = compressae.SparseIndex(model, mode=mode, storage=storage)
        add_codes(index, codes, "values" if mode == "sparse" else "refit", n)
        q = qcodes if mode == "sparse" else qdense
        index.search(q[:1], n=TOP)  # sparse mode builds its posting lists at the first search
        build = time.perf_counter() - t0 + enc_s + (enc_times["refit"] if mode != "sparse" else 0)
        nb = index.nbytes / n
        log(f"  built compressae {mode}/{storage}: {build:.0f} s incl. encoding, {nb:.0f} B/item, "
            f"rss max {rss_gb():.1f} GB")
        name = "compressae sparse" if mode == "sparse" else "compressae asymmetric"
        qkind = "k-code queries" if mode == "sparse" else "dense queries"
        key = f"{name}|{storage}"
        for t in threads:
            methods.append(Method(name, f"{name} ({storage})", f"exhaustive, {qkind}", t,
                                  lambda m, index=index, t=t, q=q: index.search(q[:m], n=TOP, num_threads=t)[1],
                                  nb, build, exact_of=None))
            methods[-1].key = key
            for c in cands:
                methods.append(Method(name, f"{name} ({storage})", f"{knob}={c}, {qkind}", t,
                                      lambda m, index=index, t=t, q=q, c=c: index.search(
                                          q[:m], n=TOP, num_threads=t, **{knob: c})[1],
                                      nb, build, exact_of=key))
                methods[-1].key = f"{key}|{c}"
        gc.collect()

    faiss.omp_set_num_threads(2)
    d = synth.d
    big_sample = sample[:a.faiss_rows] if a.faiss_rows else sample
    if large and a.faiss_train > len(sample):
        big_sample = np.concatenate([x for _, x in synth.rows(1_000_000, 1_000_000 + a.faiss_train)])
    nlist = a.nlist_large if large else a.nlist
    probes = [int(p) for p in a.nprobe.split(",")]
    # One coarse quantiser (k-means, nlist centroids) serves IVFPQ and IVFFlat;
    # each one's build time counts its training.
    t0 = time.perf_counter()
    coarse = faiss.IndexFlatIP(d)
    km = faiss.Clustering(d, nlist)
    km.spherical = True
    km.niter = a.kmeans_iters
    km.train(big_sample, coarse)
    t_coarse = time.perf_counter() - t0
    log(f"  faiss coarse quantiser: {nlist} centroids in {t_coarse:.0f} s")
    if want("ivfpq"):
        for m in [int(x) for x in (a.pq_large if large else a.pq).split(",")]:
            t0 = time.perf_counter()
            index = faiss.IndexIVFPQ(coarse, d, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            index.train(big_sample)
            add_faiss(index, synth, n)
            build = time.perf_counter() - t0 + t_coarse
            nb = faiss_ivf_bytes(index, n)
            log(f"  built faiss IVF{nlist},PQ{m}: {build:.0f} s, {nb:.0f} B/item, rss max {rss_gb():.1f} GB")
            keep.append(index)
            for t in threads:
                for p in probes:
                    def fn(mq, index=index, t=t, p=p):
                        faiss.omp_set_num_threads(t)
                        index.nprobe = p
                        return index.search(qdense[:mq], TOP)[1]
                    methods.append(Method("faiss IVFPQ", f"faiss IVF{nlist},PQ{m}x8", f"nprobe {p}", t,
                                          fn, nb, build))
    dense_ok = n <= a.dense_max
    if want("ivfflat") and dense_ok:
        t0 = time.perf_counter()
        index = faiss.IndexIVFFlat(coarse, d, nlist, faiss.METRIC_INNER_PRODUCT)
        add_faiss(index, synth, n)
        build = time.perf_counter() - t0 + t_coarse
        keep.append(index)
        nb = faiss_ivf_bytes(index, n)
        log(f"  built faiss IVF{nlist},Flat: {build:.0f} s, {nb:.0f} B/item, rss max {rss_gb():.1f} GB")
        for t in threads:
            for p in probes + [nlist]:
                def fn(mq, index=index, t=t, p=p):
                    faiss.omp_set_num_threads(t)
                    index.nprobe = p
                    return index.search(qdense[:mq], TOP)[1]
                methods.append(Method("faiss IVFFlat", f"faiss IVF{nlist},Flat",
                                      f"nprobe {p}" + (" (all lists: exact dense search)" if p == nlist else ""),
                                      t, fn, nb, build))
    if want("hnsw") and dense_ok:
        t0 = time.perf_counter()
        index = faiss.IndexHNSWFlat(d, a.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        add_faiss(index, synth, n)
        build = time.perf_counter() - t0
        nb = hnsw_bytes(index, n)
        log(f"  built faiss HNSW{a.hnsw_m},Flat: {build:.0f} s (2 threads), {nb:.0f} B/item, rss max {rss_gb():.1f} GB")
        for t in threads:
            for ef in [int(e) for e in a.ef.split(",")]:
                def fn(mq, index=index, t=t, ef=ef):
                    faiss.omp_set_num_threads(t)
                    index.hnsw.efSearch = ef
                    return index.search(qdense[:mq], TOP)[1]
                methods.append(Method("faiss HNSW", f"faiss HNSW{a.hnsw_m},Flat", f"efSearch {ef}", t, fn, nb, build))
    methods.append(Method("keep", "keep", "", 0, None, 0, 0))
    methods[-1].objects = (coarse, keep)
    return methods


def measure(methods, truth, a):
    methods = [m for m in methods if m.fn is not None]
    nq = len(truth)
    # Recall pass (untimed beyond an estimate), one per method at its thread count's first.
    by_key = {}
    for m in methods:
        t0 = time.perf_counter()
        m.fn(8)
        est = (time.perf_counter() - t0) / 8
        m.m_time = int(max(50, min(nq, a.round_seconds / max(est, 1e-9))))
        m.m_recall = int(max(100, min(nq, a.recall_seconds / max(est, 1e-9))))
    shared = {}
    for m in methods:
        sig = (m.name, m.setting)
        if sig in shared:  # the same index and setting at another thread count: same ids
            m.found, m.m_recall = shared[sig]
            continue
        m.found = m.fn(m.m_recall)
        shared[sig] = (m.found, m.m_recall)
        if hasattr(m, "key"):
            by_key[m.key] = m
    for r in range(a.runs):
        log(f"  round {r + 1}/{a.runs} (load {load_avg()})")
        for m in methods:
            gc.collect()
            t0 = time.perf_counter()
            m.fn(m.m_time)
            m.times.append(time.perf_counter() - t0)
    rows = []
    for m in methods:
        qps = m.m_time / statistics.median(m.times)
        rec = recall(m.found, truth)
        own = None
        if m.exact_of is not None and m.exact_of in by_key:
            ref = by_key[m.exact_of].found
            k = min(len(ref), len(m.found))
            own = compressae.recall_at_n(m.found[:k], ref[:k])
        rows.append(dict(family=m.family, method=m.name, setting=m.setting, threads=m.threads,
                         bytes=m.nbytes, build=m.build, qps=qps, recall=rec, own=own,
                         q_time=m.m_time, q_recall=m.m_recall, rounds=len(m.times)))
    return rows


# ---------------------------------------------------------------- output

def frontier(points):
    """Pareto points (recall, qps): no other point has both higher."""
    pts = sorted(points, key=lambda p: (-p[0], -p[1]))
    out, best = [], -1.0
    for r, q in pts:
        if q > best:
            out.append((r, q))
            best = q
    return sorted(out)


def plot(all_rows, path: Path, budgets=(64, 256, 2048)):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sizes = sorted({r["N"] for r in all_rows})
    fig, axes = plt.subplots(len(sizes), len(budgets), figsize=(5 * len(budgets), 4.2 * len(sizes)),
                             squeeze=False)
    colours = {"compressae sparse": "tab:blue", "compressae asymmetric": "tab:green",
               "faiss IVFPQ": "tab:orange", "faiss IVFFlat": "tab:red", "faiss HNSW": "tab:purple"}
    for i, n in enumerate(sizes):
        rows = [r for r in all_rows if r["N"] == n and r["threads"] == 1]
        for j, budget in enumerate(budgets):
            ax = axes[i][j]
            for fam, col in colours.items():
                pts = [(r["recall"], r["qps"]) for r in rows if r["family"] == fam and r["bytes"] <= budget]
                if not pts:
                    continue
                ax.scatter(*zip(*pts), color=col, s=14, alpha=0.5)
                f = frontier(pts)
                ax.plot(*zip(*f), color=col, marker="o", ms=4, label=fam)
            ax.set_yscale("log")
            ax.set_xlabel("Recall@100")
            ax.set_ylabel("queries/s (1 thread)")
            ax.set_title(f"N = {n:,}: at most {budget} B/item")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    log(f"plot {path}")


def markdown(all_rows, meta) -> str:
    lines = [f"# Scale benchmark ({meta['date']})", "",
             f"Command: `{meta['command']}`", "",
             f"Machine: {meta['cpu']}, {meta['nproc']} CPUs, {meta['memory']}; commit {meta['commit']}; "
             f"compressae {compressae.library_version()}, BLAS {compressae.blas_name()}, "
             f"faiss {faiss.__version__}. Load (uptime) before: {meta['load_before']}, after: "
             f"{meta['load_after']} (other helpers share the 2 cores: timings are noisy; every figure is "
             f"the median of {meta['runs']} rounds, all methods interleaved in each round). "
             f"Peak RSS {meta['rss']:.1f} GB.", "",
             f"Data: {meta['data']}", "", f"Model: {meta['model']}", ""]
    for n in sorted({r["N"] for r in all_rows}):
        note = meta["sizes"].get(n, "")
        lines += [f"## N = {n:,}", "", note, "",
                  "| method | setting | threads | bytes/item | build s | q/s | Recall@100 | vs own exhaustive | "
                  "queries timed / for recall |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in sorted([r for r in all_rows if r["N"] == n],
                        key=lambda r: (r["family"], r["method"], r["threads"], r["setting"])):
            own = "" if r["own"] is None else f"{r['own']:.3f}"
            lines.append(f"| {r['method']} | {r['setting']} | {r['threads']} | {r['bytes']:,.0f} | "
                         f"{r['build']:,.0f} | {r['qps']:,.0f} | {r['recall']:.3f} | {own} | "
                         f"{r['q_time']} / {r['q_recall']} |")
        lines.append("")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--workdir", default="/tmp/compressae-scale")
    p.add_argument("--sizes", default="1000000,10000000")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--nlist", type=int, default=2048)
    p.add_argument("--nlist-large", type=int, default=4096)
    p.add_argument("--faiss-train", type=int, default=262144, help="training rows of faiss at sizes > 1M")
    p.add_argument("--faiss-rows", type=int, default=0,
                   help="training rows of faiss at 1M (the first of the model's sample; 0: all 125,000)")
    p.add_argument("--kmeans-iters", type=int, default=25)
    p.add_argument("--nprobe", default="8,16,32,64")
    p.add_argument("--pq", default="48,96,192")
    p.add_argument("--pq-large", default="48,96")
    p.add_argument("--ef", default="32,64,128,256")
    p.add_argument("--hnsw-m", type=int, default=32, help="HNSW links per node (efConstruction 40)")
    p.add_argument("--candidates", default="200,500,1000,2000")
    p.add_argument("--dense-max", type=int, default=1_000_000,
                   help="largest N with methods that hold the dense vectors (IVFFlat, HNSW)")
    p.add_argument("--methods", default="",
                   help="methods at N <= 1M (same names as --methods-large; default: all)")
    p.add_argument("--methods-large", default="sparse,sparse-compact,asym-compact,ivfpq",
                   help="methods at N > 1M (of sparse, sparse-compact, asym, asym-compact, ivfpq, ivfflat, hnsw)")
    p.add_argument("--round-seconds", type=float, default=20.0)
    p.add_argument("--recall-seconds", type=float, default=120.0)
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--tag", default="")
    a = p.parse_args()
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    date = _dt.date.today().isoformat()
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"scale-{date}{a.tag}"
    meta = dict(machine(), date=date, command="python3 benchmarks/scale.py " + " ".join(sys.argv[1:]),
                load_before=load_avg(), runs=a.runs, sizes={})
    data = Path(a.data)
    X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
    qrows = np.load(data / "wordnet_split_queries.npy")
    mask = np.ones(len(X), bool)
    mask[qrows] = False
    synth = Synth(X[mask], a.noise, a.seed)
    queries = synth.queries(X[qrows])
    del X
    meta["data"] = (f"the shared set's {synth.nb:,} catalogue rows, then perturbed copies "
                    f"x' = normalise(x + sigma e), e ~ N(0, I/d), sigma = {a.noise} (cos(x, x') ~ "
                    f"{1 / np.sqrt(1 + a.noise ** 2):.2f}), noise per 65,536-row block from "
                    f"default_rng([{a.seed}, block]); queries: the 1,000 held-out rows perturbed by the same "
                    f"rule; truth: exact float32 cosine top-100 (numpy BLAS, blocks of 65,536 rows).")
    model, meta["model"], sample = get_model(synth, a, workdir)
    qcodes = model.encode(queries)
    qcodes_refit = None
    threads = [int(t) for t in a.threads.split(",")]
    all_rows = []
    for n in [int(s) for s in a.sizes.split(",")]:
        log(f"== N = {n:,} ==")
        truth, t_truth = exact_truth(synth, queries, n, workdir / f"scale-truth-{n}-s{a.seed}.npy")
        codes, enc = encode_catalogue(model, synth, n, workdir)
        large = n > 1_000_000
        methods = build_methods(a, n, synth, model, codes, enc, sample, queries, qcodes, qcodes_refit,
                                threads, large)
        rows = measure(methods, truth, a)
        for r in rows:
            r["N"] = n
        all_rows += rows
        meta["sizes"][n] = (f"Synthesis + encoding of the catalogue: encode {enc['encode']:.0f} s, refit "
                            f"{enc['refit']:.0f} s (cached runs reuse them); compressae's build time = "
                            f"encoding (+ refit in asymmetric mode) + add + posting lists; faiss's = "
                            f"training + adding on 2 threads. "
                            + ("" if n <= a.dense_max else
                               f"IVFFlat and HNSW hold the float32 vectors ({4 * synth.d * n / 2**30:.0f} GiB "
                               f"at this N, over the 8 GB budget of a run on this shared machine): not run."))
        del methods, codes
        gc.collect()
        meta["load_after"] = load_avg()
        meta["rss"] = rss_gb()
        stem.with_suffix(".md").write_text(markdown(all_rows, meta))
        with open(stem.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(all_rows[0].keys()))
            w.writeheader()
            w.writerows(all_rows)
        plot(all_rows, stem.with_suffix(".png"))
    print(markdown(all_rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
