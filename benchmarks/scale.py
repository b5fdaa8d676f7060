#!/usr/bin/env python3
"""Scale benchmark: compressae's indexes against faiss and hnswlib at 1M and 10M items.

Catalogue of 1M items (``--dense-n``), synthesised from the shared WordNet
MiniLM data (``--data``, default /work/shared/data: 117,659 x 384 float16, a
fixed split of 1,000 held-out queries; the other 116,659 rows are the base):

- Row r < 116,659 is base row r (L2-normalised float32). Every later row is a
  perturbed copy of base row ``r mod 116,659``: ``x' = normalise(x + sigma e)``
  with ``e ~ N(0, I / d)``, ``--noise`` sigma = 0.5 (cosine about 0.89 with its
  source). Rows are made in aligned blocks of 65,536; block b draws its noise
  from ``numpy.random.default_rng([seed, b])`` (``--seed`` 12345), so any
  block can be regenerated alone. The dense catalogue is never held whole.
- Queries: the first ``--queries`` (200) of the 1,000 held-out rows, each
  perturbed by the same rule (noise from ``default_rng([seed, 2**31])``).
  200 queries give Recall@100 over 20,000 (query, true neighbour) pairs: a
  standard error of about 0.01 on a recall near 0.5 (queries are correlated
  within, so this is a lower bound), enough to order the methods here.
- Truth: the exact top-100 of each query by cosine (float32 BLAS ``Q @ X.T``
  per block, a running top-100).

Catalogue of 10M items (``--code-n``), made in code space: a dense 10M x 384
float32 catalogue is 15 GB (over this benchmark's 10 GB peak), and encoding it
would take about an hour on 2 cores. Items 0 .. 1M-1 are the 1M catalogue's
codes; item r >= 1M copies the code of item ``r mod 1M`` with its values
scaled by ``exp(0.2 z)`` (z ~ N(0, 1) per value) and its ``--swap`` (4)
smallest-|value| latents replaced by latents drawn from the 1M catalogue's
latent frequencies (a replacement already in the row keeps the old latent);
noise from ``default_rng([seed, 10**6 + block])``. Such items have no dense
vectors, so at 10M there is no dense truth and no dense peer (IVFPQ, IVFFlat,
HNSW, exact dense: the 15 GB they need is the point): compressae's rows are
compared with the exhaustive sparse ranking of the same 10M codes, the goal's
own measure ("0.95 of the exact ranking of the same mode").

A compressae model (h = 4096, k = 32) is trained once with the library's
default recipe for ``--epochs`` epochs on every 8th row of the 1M catalogue
(125,000 rows). faiss's coarse quantiser and PQ codebooks train on the first
``--faiss-rows`` of the same sample. Everything built is cached under
``--workdir`` (default /work/scratch/scale): model, truth, codes (memmaps:
indices and values, and the refitted codes with their own latent order: refit
returns each row's latents by decreasing |refitted value|, which is not the
encoder's order), faiss and hnswlib indexes. ``--build-only`` builds the
caches and stops; a later run times them.

Methods, each timed round-robin with all the others (round 1 of every
method, round 2, ...; the median of ``--runs`` rounds; threads 1 and 2; a
method that answers all the queries well within ``--round-seconds`` repeats
them in each round):

- compressae sparse (cosine between k-codes, inverted index), standard and
  compact storage, queries as k-codes (encoded beforehand);
- compressae asymmetric: reconstructed mode with refitted item values, dense
  queries, standard and compact storage;
- compressae rescored (``asym-rescored``, ``asym-rescored-packed8``): the
  reconstructed-mode index searched with ``candidates=C`` (``--candidates``):
  candidates from posting lists of the stored codes, rescored exactly. Its
  bytes/item are measured after the first candidates search, which makes the
  candidate lists (the exhaustive rows of the same index: before it);
- faiss IVF1024,PQ48x8 (``--pq`` may list several code sizes; nprobe
  ``--nprobe-pq``, default ``--nprobe``), IVF1024,Flat (nprobe 8, 32), exact
  dense search (faiss IndexFlatIP), hnswlib HNSW (M ``--hnsw-m``,
  efConstruction ``--hnsw-efc``, efSearch ``--ef``), its build bounded by
  ``--hnsw-seconds``: when the bound stops it, the graph holds a prefix of the
  catalogue and its recall is against the exact top-100 of that prefix (the
  rows say so).

Bytes per item: the index's own ``nbytes`` / N for compressae; for faiss the
codes and 8-byte ids plus centroids and codebooks spread over N; for HNSW the
float32 vectors plus the level-0 links (hnswlib's element size).

``--sizes real`` runs the shared set itself instead: its 116,659 catalogue
rows, its held-out queries (``--real-queries``, all 1,000) and their exact
top-100 from the data directory, a model trained on the catalogue with the
default recipe for ``--real-epochs`` (8) epochs (or ``--real-model``); faiss
trains on ``--faiss-rows`` random catalogue rows. hnswlib searches with
max(efSearch, k), so every efSearch up to k = 100 is one search (one row);
``--hnsw-m`` may list several graphs. ``--targets`` adds a frontier summary:
per target Recall@100, the fastest 1-thread setting of compressae and of each
peer reaching it, and each IVFPQ point against compressae's best at no more
bytes and no less recall.

Timed phases hold ``--lock`` (flock; other benchmarks on the shared machine
take the same lock); builds run outside it. Writes ``scale-<date><tag>.md``
(tables, settings, machine, load), ``.csv`` and ``.png`` (Recall@100 against
q/s at 1 thread, a frontier per memory budget) to ``--out-dir``.

Run:  python3 benchmarks/scale.py --sizes 1000000 --build-only   # caches (~30 min on 2 cores)
      python3 benchmarks/scale.py --sizes 1000000                # timing
      python3 benchmarks/scale.py --sizes 10000000 --tag -10M    # code-space 10M
      python3 benchmarks/scale.py --sizes real --threads 1 --tag -real   # the shared set itself
Needs numpy, faiss-cpu, hnswlib, matplotlib and the compressae package.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import fcntl
import gc
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
    """The synthetic dense catalogue, made block by block (see the module doc)."""

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
            yield lo, np.ascontiguousarray(x[lo - b * BLOCK:hi - b * BLOCK])

    def queries(self, q: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 2**31])
        noise = rng.standard_normal(q.shape, dtype=np.float32) * np.float32(self.sigma / np.sqrt(self.d))
        return unit_rows(unit_rows(q) + noise)


class RealCatalogue:
    """The shared set itself: its 116,659 catalogue rows (L2-normalised
    float32), the held-out queries and the exact top-100 shipped with it."""

    prefix = "real-"

    def __init__(self, base: np.ndarray, seed: int):
        self.base = unit_rows(base)
        self.nb, self.d = self.base.shape
        self.seed = seed

    def rows(self, start: int, stop: int):
        """Yields (offset, rows) covering [start, stop) by aligned blocks."""
        for lo in range(start, stop, BLOCK):
            yield lo, self.base[lo:min(stop, lo + BLOCK)]

    def train_rows(self, n: int) -> np.ndarray:
        """A fixed random sample of n rows (the rows are stored by part of
        speech, so a prefix would be nouns only)."""
        pick = np.sort(np.random.default_rng([self.seed, 7]).permutation(self.nb)[:n])
        return np.ascontiguousarray(self.base[pick])


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
        top = min(TOP, s.shape[1])
        part = np.argpartition(-s, top - 1, axis=1)[:, :top]
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

def train_sample(synth: Synth, n: int) -> np.ndarray:
    """Every 8th row of the first n synthetic rows."""
    parts = [x[(-lo) % 8::8] for lo, x in synth.rows(0, n)]
    return np.ascontiguousarray(np.concatenate(parts))


def get_model(synth: Synth, a, workdir: Path):
    path = workdir / f"scale-model-h{H}-k{K}-e{a.epochs}-s{a.seed}.safetensors"
    info = path.with_suffix(".txt")
    if path.is_file():
        log(f"model: cached {path}")
        return compressae.CompresSAE.load(path), info.read_text().strip()
    sample = train_sample(synth, a.dense_n)
    log(f"model: training on {len(sample):,} rows, {a.epochs} epochs...")
    model = compressae.CompresSAE(synth.d, latent_dim=H, k=K, seed=0)
    t0 = time.perf_counter()
    model.fit(sample, epochs=a.epochs, seed=0, num_threads=2)
    seconds = time.perf_counter() - t0
    model.save(path)
    text = (f"h = {H}, k = {K}, the default recipe capped at {a.epochs} epochs on every 8th row of the 1M "
            f"catalogue ({len(sample):,} rows): {len(model.history_)} steps, {seconds:.0f} s on 2 threads "
            f"(load {load_avg()})")
    info.write_text(text + "\n")
    log(f"model: {text}")
    return model, text


CODE_NAMES = ("indices", "values", "refit_indices", "refit_values")


def encode_catalogue(model, synth: Synth, n: int, workdir: Path) -> tuple[dict, dict]:
    """Codes of the first n rows in memmaps (cached): the encoder's codes and
    the refitted ones, each with its own latent order."""
    paths = {m: workdir / f"scale-codes-{n}-{m}.npy" for m in CODE_NAMES}
    done = workdir / f"scale-codes-{n}.done"
    if not done.is_file():
        out = {m: np.lib.format.open_memmap(paths[m], mode="w+", dtype=np.int32 if "indices" in m
                                            else np.float32, shape=(n, K)) for m in CODE_NAMES}
        t_enc = t_refit = 0.0
        for lo, x in synth.rows(0, n):
            t1 = time.perf_counter()
            codes = model.encode(x, num_threads=2)
            t2 = time.perf_counter()
            refit = model.refit(x, codes, num_threads=2)
            t3 = time.perf_counter()
            t_enc += t2 - t1
            t_refit += t3 - t2
            hi = lo + len(x)
            out["indices"][lo:hi] = codes.indices
            out["values"][lo:hi] = codes.values
            out["refit_indices"][lo:hi] = refit.indices
            out["refit_values"][lo:hi] = refit.values
            if (lo // BLOCK) % 4 == 0:
                log(f"  encoded {hi:,} / {n:,} (rss max {rss_gb():.1f} GB, load {load_avg()})")
        for m in out.values():
            m.flush()
        del out
        done.write_text(f"{t_enc} {t_refit} {load_avg()}\n")
    t_enc, t_refit = map(float, done.read_text().split()[:2])
    codes = {m: np.load(paths[m], mmap_mode="r") for m in CODE_NAMES}
    return codes, dict(encode=t_enc, refit=t_refit)


class CodeSynth:
    """The code-space catalogue beyond the dense one (see the module doc)."""

    def __init__(self, indices: np.ndarray, values: np.ndarray, seed: int, swap: int, h: int):
        self.indices, self.values = indices, values
        self.n0, self.k = indices.shape
        self.seed, self.swap = seed, swap
        counts = np.bincount(np.asarray(indices[::7]).ravel(), minlength=h).astype(np.float64)
        self.cdf = np.cumsum(counts) / counts.sum()

    def rows(self, start: int, stop: int):
        """Yields (offset, (indices, values)) covering [start, stop) by aligned blocks."""
        for b in range(start // BLOCK, (stop + BLOCK - 1) // BLOCK):
            lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)
            yield lo, self.block(b, lo, hi)

    def block(self, b: int, lo: int, hi: int):
        src = np.arange(lo, hi) % self.n0
        # Source rows of a block are consecutive modulo n0: slice, don't gather a memmap.
        idx = np.asarray(self.indices[src]) if src[0] + len(src) > self.n0 else \
            np.array(self.indices[src[0]:src[0] + len(src)])
        val = np.asarray(self.values[src]) if src[0] + len(src) > self.n0 else \
            np.array(self.values[src[0]:src[0] + len(src)])
        if lo >= self.n0:
            rng = np.random.default_rng([self.seed, 10**6 + b])
            val = val * np.exp(np.float32(0.2) * rng.standard_normal(val.shape, dtype=np.float32))
            if self.swap:
                weakest = np.argsort(np.abs(val), axis=1)[:, :self.swap]
                new = np.searchsorted(self.cdf, rng.random((len(idx), self.swap))).astype(np.int32)
                new = np.minimum(new, len(self.cdf) - 1)
                clash = (new[:, :, None] == idx[:, None, :]).any(axis=2)
                clash |= (new[:, :, None] == new[:, None, :]).sum(axis=2) > 1
                old = np.take_along_axis(idx, weakest, 1)
                np.put_along_axis(idx, weakest, np.where(clash, old, new), 1)
        return np.ascontiguousarray(idx, dtype=np.int32), np.ascontiguousarray(val, dtype=np.float32)


# ---------------------------------------------------------------- methods

class Method:
    def __init__(self, family, name, setting, threads, fn, nbytes, build, truth_key="dense", note=""):
        self.family, self.name, self.setting, self.threads = family, name, setting, threads
        self.fn, self.nbytes, self.build, self.note = fn, nbytes, build, note
        self.truth_key = truth_key  # which truth its recall is against
        self.times, self.found, self.m_time, self.reps = [], None, None, 1


def faiss_ivf_bytes(index, n: int) -> float:
    ivf = faiss.downcast_index(faiss.extract_index_ivf(index))  # the IndexIVFPQ, to count its codebooks
    extra = ivf.nlist * ivf.d * 4
    if isinstance(ivf, faiss.IndexIVFPQ):
        extra += ivf.pq.M * ivf.pq.ksub * ivf.pq.dsub * 4
    return (ivf.code_size + 8) + extra / n


def timed_cache(path: Path, build):
    """(object, build seconds), from ``path`` + ``path.seconds`` when cached."""
    sec = Path(str(path) + ".seconds")
    if path.is_file() and sec.is_file():
        return None, float(sec.read_text().split()[0])
    t0 = time.perf_counter()
    obj = build()
    seconds = time.perf_counter() - t0
    return obj, seconds


def compressae_indexes(a, n, model, source, enc, qcodes, queries, threads, truth_key, modes):
    """Builds compressae's indexes from codes (``source(values_kind)`` yields code blocks).

    Rescored search (``asym-rescored``, ``asym-rescored-packed8``) uses the
    reconstructed-mode index of the same storage as the exhaustive
    asymmetric rows (one index); its candidate lists are made at its first
    candidates search, and its bytes/item are measured after that search,
    the exhaustive rows' before it."""
    methods = []
    candidates = [int(c) for c in a.candidates.split(",")]
    for mode, storage, tag, rtag in (("sparse", "standard", "sparse", None),
                                     ("sparse", "compact", "sparse-compact", None),
                                     ("reconstructed", "standard", "asym", "asym-rescored"),
                                     ("reconstructed", "compact", "asym-compact", "asym-rescored-compact"),
                                     ("reconstructed", "packed8", "asym-packed8", "asym-rescored-packed8")):
        if tag not in modes and rtag not in modes:
            continue
        t0 = time.perf_counter()
        index = compressae.SparseIndex(model, mode=mode, storage=storage)
        for _, block in source("values" if mode == "sparse" else "refit"):
            index.add(block)
        q = qcodes if mode == "sparse" else queries
        index.search(q[:1], n=TOP, num_threads=2)  # sparse mode makes its posting lists at the first search
        t_add = time.perf_counter() - t0
        build = t_add + enc.get("encode", 0.0) + (enc.get("refit", 0.0) if mode != "sparse" else 0.0)
        nb = index.nbytes / n
        log(f"  built compressae {mode}/{storage}: add {t_add:.0f} s, {build:.0f} s incl. encoding, "
            f"{nb:.0f} B/item, rss max {rss_gb():.1f} GB")
        name = "compressae sparse" if mode == "sparse" else "compressae asymmetric"
        qkind = "k-code queries" if mode == "sparse" else "dense queries"
        if tag in modes:
            for t in threads:
                methods.append(Method(name, f"{name} ({storage})", f"exhaustive, {qkind}", t,
                                      lambda m, index=index, t=t, q=q: index.search(q[:m], n=TOP, num_threads=t)[1],
                                      nb, build, (f"own:{name} (standard)|exhaustive, {qkind}"
                                                  if truth_key == "own" else truth_key),
                                      note=f"add + posting lists {t_add:.0f} s"))
        if rtag in modes:
            t1 = time.perf_counter()
            index.search(q[:1], n=TOP, num_threads=2, candidates=candidates[0])  # makes the candidate lists
            t_lists = time.perf_counter() - t1
            nb_r = index.nbytes / n
            log(f"  compressae rescored/{storage}: candidate lists {t_lists:.1f} s, {nb_r:.0f} B/item "
                f"(exhaustive {nb:.0f}), rss max {rss_gb():.1f} GB")
            rname = "compressae rescored"
            for t in threads:
                for c in candidates:
                    methods.append(Method(rname, f"{rname} ({storage})", f"candidates {c}, dense queries", t,
                                          lambda m, index=index, t=t, q=q, c=c:
                                          index.search(q[:m], n=TOP, num_threads=t, candidates=c)[1],
                                          nb_r, build + t_lists,
                                          (f"own:{name} (standard)|exhaustive, {qkind}"
                                           if truth_key == "own" else truth_key),
                                          note=f"add {t_add:.0f} s + candidate lists {t_lists:.1f} s"))
        gc.collect()
    return methods


def dense_methods(a, n, synth, queries, threads, workdir, modes):
    methods, keep, notes = [], [], {}
    d = synth.d
    sample = (synth.train_rows(a.faiss_rows) if hasattr(synth, "train_rows")
              else train_sample(synth, n)[:a.faiss_rows])
    nlist = a.nlist
    prefix = getattr(synth, "prefix", "")
    probes = [int(p) for p in a.nprobe.split(",")]
    faiss.omp_set_num_threads(2)

    def fn_ivf(index, p, t):
        def fn(mq):
            faiss.omp_set_num_threads(t)
            index.nprobe = p
            return index.search(queries[:mq], TOP)[1]
        return fn

    def ivf(kind):
        path = workdir / f"scale-faiss-{prefix}{n}-IVF{nlist}-{kind}-r{a.faiss_rows}-i{a.kmeans_iters}.index"
        sec = Path(str(path) + ".seconds")
        if path.is_file() and sec.is_file():
            return faiss.read_index(str(path)), float(sec.read_text().split()[0])
        faiss.omp_set_num_threads(2)
        t0 = time.perf_counter()
        coarse = faiss.IndexFlatIP(d)
        if kind == "Flat":
            index = faiss.IndexIVFFlat(coarse, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFPQ(coarse, d, nlist, int(kind[2:]), 8, faiss.METRIC_INNER_PRODUCT)
        index.cp.niter = a.kmeans_iters
        index.cp.spherical = True
        index.train(sample)
        for _, x in synth.rows(0, n):
            index.add(x)
        seconds = time.perf_counter() - t0
        faiss.write_index(index, str(path))
        sec.write_text(f"{seconds} {load_avg()}\n")
        log(f"  built faiss IVF{nlist},{kind}: {seconds:.0f} s (2 threads, load {load_avg()})")
        return index, seconds

    probes_pq = [int(p) for p in (a.nprobe_pq or a.nprobe).split(",")]
    kinds = [(f"PQ{m}", "ivfpq", probes_pq) for m in str(a.pq).split(",")] + [("Flat", "ivfflat", probes)]
    for kind, tag, kind_probes in kinds:
        if tag not in modes:
            continue
        index, build = ivf(kind)
        keep.append(index)
        nb = faiss_ivf_bytes(index, n)
        fam = "faiss IVFPQ" if tag == "ivfpq" else "faiss IVFFlat"
        label = f"faiss IVF{nlist},{kind}" + ("x8" if tag == "ivfpq" else "")
        for t in threads:
            for p in kind_probes:
                methods.append(Method(fam, label, f"nprobe {p}", t, fn_ivf(index, p, t), nb, build))
    if "flat" in modes:
        t0 = time.perf_counter()
        index = faiss.IndexFlatIP(d)
        for _, x in synth.rows(0, n):
            index.add(x)
        build = time.perf_counter() - t0
        keep.append(index)
        for t in threads:
            def fn(mq, index=index, t=t):
                faiss.omp_set_num_threads(t)
                return index.search(queries[:mq], TOP)[1]
            methods.append(Method("exact dense", "faiss IndexFlatIP (exact dense)", "float32 BLAS", t, fn,
                                  4.0 * d, build, note="synthesis of the rows included in build"))
    for hm in ([int(m) for m in str(a.hnsw_m).split(",")] if "hnsw" in modes else []):
        index, n_hnsw, build, complete = hnsw(a, n, synth, workdir, hm)
        keep.append(index)
        tkey = "dense" if complete else f"dense-{n_hnsw}"
        notes["hnsw"] = (n_hnsw, complete)
        # hnswlib's level-0 element (vector, 2M links + count, label) plus upper levels (~1/M of nodes)
        nb = 4 * d + 4 * (2 * hm + 1) + 8 + 4 * (hm + 1) / max(1, hm - 1) * 1.0
        # hnswlib searches with max(efSearch, k): every efSearch <= k = 100 is the same search.
        efs = {}
        for ef in [int(e) for e in a.ef.split(",")]:
            efs.setdefault(max(ef, TOP), []).append(ef)
        for t in threads:
            for ef, asked in sorted(efs.items()):
                def fn(mq, index=index, t=t, ef=ef):
                    index.set_ef(ef)
                    return index.knn_query(queries[:mq], k=TOP, num_threads=t)[0].astype(np.int64)
                low = [e for e in asked if e < TOP]
                setting = (f"efSearch {ef}" if not low else
                           f"efSearch {min(low)}..{TOP} (hnswlib searches with max(ef, k = {TOP}))")
                setting += "" if complete else f" (graph of the first {n_hnsw:,} items)"
                methods.append(Method("HNSW (hnswlib)", f"hnswlib HNSW M{hm} efC {a.hnsw_efc}", setting,
                                      t, fn, nb, build, tkey))
    return methods, keep, notes


def hnsw(a, n, synth, workdir, m):
    """hnswlib graph (M = m) over the first rows of the catalogue, its build bounded by --hnsw-seconds."""
    import hnswlib
    prefix = getattr(synth, "prefix", "")
    stem = workdir / f"scale-hnsw-{prefix}{n}-M{m}-efc{a.hnsw_efc}-b{a.hnsw_seconds:.0f}"
    meta = Path(str(stem) + ".meta")
    if meta.is_file():
        n_hnsw, build, complete = meta.read_text().split()[:3]
        index = hnswlib.Index(space="ip", dim=synth.d)
        index.load_index(str(stem) + ".bin", max_elements=int(n_hnsw))
        return index, int(n_hnsw), float(build), complete == "1"
    index = hnswlib.Index(space="ip", dim=synth.d)
    index.init_index(max_elements=n, ef_construction=a.hnsw_efc, M=m, random_seed=0)
    t0 = time.perf_counter()
    added = 0
    for lo, x in synth.rows(0, n):
        for s in range(0, len(x), 8192):
            part = x[s:s + 8192]
            index.add_items(part, np.arange(lo + s, lo + s + len(part)), num_threads=2)
            added = lo + s + len(part)
            if time.perf_counter() - t0 > a.hnsw_seconds:
                break
        log(f"  hnsw: {added:,} items, {time.perf_counter() - t0:.0f} s (load {load_avg()})")
        if time.perf_counter() - t0 > a.hnsw_seconds:
            break
    build = time.perf_counter() - t0
    complete = added == n
    index.save_index(str(stem) + ".bin")
    meta.write_text(f"{added} {build} {int(complete)} {load_avg()}\n")
    log(f"  built hnswlib HNSW M{m}: {added:,} items in {build:.0f} s (2 threads)")
    return index, added, build, complete


class Lock:
    """flock on the shared benchmark lock while timing."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.f = None
        if self.path:
            self.f = open(self.path, "a")
            log(f"waiting for {self.path} (load {load_avg()})")
            fcntl.flock(self.f, fcntl.LOCK_EX)
            log(f"holding {self.path} (load {load_avg()})")
        return self

    def __exit__(self, *exc):
        if self.f:
            fcntl.flock(self.f, fcntl.LOCK_UN)
            self.f.close()


def measure(methods, truths, a, nq):
    methods = [m for m in methods if m.fn is not None]
    for m in methods:
        t0 = time.perf_counter()
        m.fn(4)
        est = (time.perf_counter() - t0) / 4
        m.m_time = int(max(20, min(nq, a.round_seconds / max(est, 1e-9))))
    shared = {}
    for m in methods:
        sig = (m.name, m.setting)
        if sig not in shared:  # the same index and setting at another thread count: same ids
            shared[sig] = m.fn(nq)
        m.found = shared[sig]
        if m.m_time == nq:
            # A method that answers all the queries well within a round repeats them, so
            # every round lasts about --round-seconds (timed on all the queries: four
            # queries overstate the per-call costs).
            t1 = time.perf_counter()
            m.fn(nq)
            full = time.perf_counter() - t1
            m.reps = max(1, round(a.round_seconds / max(full, 1e-9)))
    for r in range(a.runs):
        log(f"  round {r + 1}/{a.runs} (load {load_avg()})")
        for m in methods:
            t0 = time.perf_counter()
            for _ in range(m.reps):
                m.fn(m.m_time)
            m.times.append(time.perf_counter() - t0)
    rows = []
    for m in methods:
        truth = truths.get(m.truth_key)
        if truth is None and m.truth_key.startswith("own:"):
            ref = tuple(m.truth_key[4:].split("|"))
            if ref not in shared:  # the standard-storage index of the mode was not run: its own ranking
                ref = (m.name, m.setting)
                m.truth_key = "own:self"
            truth = shared[ref]
        rows.append(dict(family=m.family, method=m.name, setting=m.setting, threads=m.threads,
                         bytes=m.nbytes, build=m.build, qps=m.reps * m.m_time / statistics.median(m.times),
                         recall=recall(m.found, truth), truth=m.truth_key, q_time=m.reps * m.m_time,
                         rounds=len(m.times), note=m.note))
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


COLOURS = {"compressae sparse": "tab:blue", "compressae asymmetric": "tab:green",
           "compressae rescored": "tab:olive",
           "faiss IVFPQ": "tab:orange", "faiss IVFFlat": "tab:red", "HNSW (hnswlib)": "tab:purple",
           "exact dense": "black"}


def plot(rows, path: Path, title: str, budgets=(64, 160, 256, 2048)):
    """Recall@100 against q/s at 1 thread, one panel per memory budget; rows
    may come from the run or from its CSV (strings)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    # HNSW over a prefix (bounded build) is drawn too, against its prefix's truth, hollow.
    rows = [r for r in rows if int(r["threads"]) == 1 and r["truth"].startswith("dense")]
    fig, axes = plt.subplots(1, len(budgets), figsize=(4.2 * len(budgets), 4.0), squeeze=False)
    for j, budget in enumerate(budgets):
        ax = axes[0][j]
        for fam, col in COLOURS.items():
            sel = [r for r in rows if r["family"] == fam and float(r["bytes"]) <= budget]
            pts = [(float(r["recall"]), float(r["qps"])) for r in sel]
            if not pts:
                continue
            prefix = any(r["truth"] != "dense" for r in sel)
            ax.plot(*zip(*frontier(pts)), color=col, marker="o", ms=5, mfc="none" if prefix else col,
                    label=fam + (" (graph of a prefix, its own truth)" if prefix else ""))
        ax.set_yscale("log")
        ax.set_xlim(0.4, 1.0)
        ax.set_xlabel("Recall@100")
        ax.set_ylabel("queries/s (1 thread)")
        ax.set_title(f"at most {budget} B/item")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    log(f"plot {path}")


PEERS = ("faiss IVFFlat", "HNSW (hnswlib)", "faiss IVFPQ")


def frontier_summary(rows, targets) -> str:
    """For each target Recall@100, the fastest 1-thread setting reaching it of
    compressae (any of its methods) and of each peer, and IVFPQ's points
    against compressae's best at no more bytes and no less recall."""
    rows = [r for r in rows if int(r["threads"]) == 1 and r["truth"] == "dense"]

    def fastest(sel, target):
        ok = [r for r in sel if float(r["recall"]) >= target]
        return max(ok, key=lambda r: float(r["qps"])) if ok else None

    def cell(r):
        return "-" if r is None else (f"{r['method']}, {r['setting']}: {float(r['qps']):,.0f} q/s, "
                                      f"{float(r['bytes']):,.0f} B/item, recall {float(r['recall']):.3f}")
    ours = [r for r in rows if r["family"].startswith("compressae")]
    lines = ["Fastest setting reaching each target Recall@100 (1 thread); the ratios are compressae's "
             "q/s and bytes/item over the peer's.", "",
             "| target | compressae | peer | peer's fastest | q/s ratio | bytes ratio |",
             "|---:|---|---|---|---:|---:|"]
    for t in targets:
        c = fastest(ours, t)
        for fam in PEERS:
            pr = fastest([r for r in rows if r["family"] == fam], t)
            qr = f"{float(c['qps']) / float(pr['qps']):.2f}" if c and pr else "-"
            br = f"{float(c['bytes']) / float(pr['bytes']):.2f}" if c and pr else "-"
            lines.append(f"| {t:.2f} | {cell(c)} | {fam} | {cell(pr)} | {qr} | {br} |")
    lines += ["", "Each IVFPQ point against compressae's fastest point with no more bytes/item and no "
              "less Recall@100 (1 thread):", "",
              "| IVFPQ | bytes/item | Recall@100 | q/s | compressae at <= its bytes and >= its recall | q/s ratio |",
              "|---|---:|---:|---:|---|---:|"]
    for pr in sorted((r for r in rows if r["family"] == "faiss IVFPQ"),
                     key=lambda r: (float(r["bytes"]), float(r["recall"]))):
        c = fastest([r for r in ours if float(r["bytes"]) <= float(pr["bytes"])], float(pr["recall"]))
        lines.append(f"| {pr['method']}, {pr['setting']} | {float(pr['bytes']):,.0f} | {float(pr['recall']):.3f} | "
                     f"{float(pr['qps']):,.0f} | {cell(c)} | "
                     f"{'-' if c is None else format(float(c['qps']) / float(pr['qps']), '.2f')} |")
    return "\n".join(lines) + "\n"


def truth_label(key: str) -> str:
    if key == "dense":
        return "exact dense top-100"
    if key.startswith("dense-"):
        return f"exact dense top-100 of the first {int(key[6:]):,} items"
    if key == "own:self":
        return "its own exhaustive ranking"
    return "own mode's exhaustive ranking (standard storage)"


def markdown(rows, meta) -> str:
    lines = [f"# Scale benchmark, N = {meta['N']:,} ({meta['date']})", "",
             f"Command: `{meta['command']}`", "",
             f"Machine: {meta['cpu']}, {meta['nproc']} CPUs, {meta['memory']}, shared with other sessions; "
             f"commit {meta['commit']}; compressae {compressae.library_version()} (release build), BLAS "
             f"{compressae.blas_name()}, faiss {faiss.__version__}. Load (uptime 1/5/15 min) before timing: "
             f"{meta['load_before']}, after: {meta['load_after']}; timed under flock {meta['lock']}. "
             f"q/s: the median of {meta['runs']} rounds, all methods interleaved in each round. "
             f"Peak RSS {meta['rss']:.1f} GB.", "",
             f"Data: {meta['data']}", "", f"Model: {meta['model']}", "", meta["note"], "",
             "| method | setting | threads | bytes/item | build s | q/s | Recall@100 | against | queries/round |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|"]
    def setting_key(setting):
        # numeric order of nprobe / efSearch / candidates
        head = setting.split(",")[0].split(" (")[0].split()
        num = head[-1].split("..")[0] if head else ""
        return (setting.split()[0], int(num) if num.isdigit() else 0, setting)
    for r in sorted(rows, key=lambda r: (r["family"], r["method"], setting_key(r["setting"]), r["threads"])):
        lines.append(f"| {r['method']} | {r['setting']} | {r['threads']} | {r['bytes']:,.0f} | "
                     f"{r['build']:,.0f} | {r['qps']:,.1f} | {r['recall']:.3f} | {truth_label(r['truth'])} | {r['q_time']} |")
    lines.append("")
    if meta.get("targets"):
        lines += [frontier_summary(rows, meta["targets"])]
    return "\n".join(lines) + "\n"


def write_outputs(rows, meta, a, stem: Path, title: str) -> None:
    stem.with_suffix(".md").write_text(markdown(rows, meta))
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    plot(rows, stem.with_suffix(".png"), title, budgets=[int(b) for b in a.budgets.split(",")])
    print(markdown(rows, meta))


def run_real(a, workdir: Path, modes: set, threads: list, date: str) -> int:
    """The shared set itself (``--sizes real``): its 116,659 catalogue rows,
    its held-out queries and their exact top-100, a model trained on the
    catalogue (or ``--real-model``)."""
    data = Path(a.data)
    X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
    qrows = np.load(data / "wordnet_split_queries.npy")
    gt = np.load(data / "wordnet_gt_top100.npy")
    mask = np.ones(len(X), bool)
    mask[qrows] = False
    cat = RealCatalogue(X[mask], a.seed)
    queries = np.ascontiguousarray(unit_rows(X[qrows])[:a.real_queries])
    del X
    nq, n = len(queries), cat.nb
    if not mask[gt].all():
        raise SystemExit("the truth names a held-out row")
    truth = (np.cumsum(mask) - 1)[gt[:nq]]  # row numbers of the full set -> catalogue positions
    path = Path(a.real_model) if a.real_model else workdir / f"real-model-h{H}-k{K}-e{a.real_epochs}.safetensors"
    if path.is_file():
        model = compressae.CompresSAE.load(path)
        model_text = f"{path.name}, h = {model.latent_dim}, k = {model.k}" + (
            f"; {path.with_suffix('.txt').read_text().strip()}" if path.with_suffix(".txt").is_file() else "")
    else:
        log(f"model: training on the {n:,} catalogue rows, {a.real_epochs} epochs...")
        model = compressae.CompresSAE(cat.d, latent_dim=H, k=K, seed=0)
        t0 = time.perf_counter()
        model.fit(cat.base, epochs=a.real_epochs, seed=1, num_threads=2)
        model.save(path)
        model_text = (f"h = {H}, k = {K}, the default recipe capped at {a.real_epochs} epochs on the {n:,} "
                      f"catalogue rows (init seed 0, fit seed 1): {len(model.history_)} steps, "
                      f"{time.perf_counter() - t0:.0f} s on 2 threads (load {load_avg()})")
        path.with_suffix(".txt").write_text(model_text + "\n")
    t0 = time.perf_counter()
    codes = model.encode(cat.base, num_threads=2)
    t1 = time.perf_counter()
    refit = model.refit(cat.base, codes, num_threads=2)
    enc = dict(encode=t1 - t0, refit=time.perf_counter() - t1)

    def source(kind):
        c = codes if kind == "values" else refit
        yield 0, (np.ascontiguousarray(c.indices), np.ascontiguousarray(c.values))
    qcodes = model.encode(queries)
    methods = compressae_indexes(a, n, model, source, enc, qcodes, queries, threads, "dense", modes)
    dm, keep, notes = dense_methods(a, n, cat, queries, threads, workdir, modes)
    methods += dm
    meta = dict(machine(), date=date, N=n, runs=a.runs, lock=a.lock, model=model_text,
                command="python3 benchmarks/scale.py " + " ".join(sys.argv[1:]),
                targets=[float(t) for t in a.targets.split(",")] if a.targets else [])
    meta["data"] = (f"the shared set itself ({a.data}): its {n:,} catalogue rows, the first {nq} of its "
                    f"1,000 held-out queries, truth its exact top-100 (wordnet_gt_top100.npy).")
    meta["note"] = (f"Build times: compressae's = encoding of the {n:,} rows ({enc['encode']:.0f} s on 2 threads) "
                    f"+ refit in the reconstructed modes ({enc['refit']:.0f} s) + add (+ candidate lists for "
                    f"the rescored rows, made at their first candidates search, whose bytes they include); "
                    f"faiss's = k-means ({a.kmeans_iters} iterations on {a.faiss_rows:,} random catalogue "
                    f"rows) + PQ training + add, 2 threads; HNSW: adding on 2 threads. Builds ran before "
                    f"timing, outside the lock, on the shared machine. hnswlib searches with "
                    f"max(efSearch, k), so every efSearch up to k = {TOP} is one search.")
    with Lock(a.lock):
        meta["load_before"] = load_avg()
        rows = measure(methods, {"dense": truth}, a, nq)
        meta["load_after"] = load_avg()
    meta["rss"] = rss_gb()
    for r in rows:
        r["N"] = n
    write_outputs(rows, meta, a, Path(a.out_dir) / f"scale-{date}{a.tag}",
                  f"shared set, N = {n:,}, {nq} queries, Recall@100 vs exact dense, 1 thread ({meta['cpu']})")
    del methods, keep
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--workdir", default="/work/scratch/scale")
    p.add_argument("--sizes", default="1000000")
    p.add_argument("--dense-n", type=int, default=1_000_000, help="rows of the dense catalogue")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--swap", type=int, default=4, help="latents replaced per code-space copy")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--faiss-rows", type=int, default=65536)
    p.add_argument("--kmeans-iters", type=int, default=10)
    p.add_argument("--nprobe", default="8,32")
    p.add_argument("--nprobe-pq", default="", help="IVFPQ's nprobe values (default: --nprobe)")
    p.add_argument("--pq", default="48", help="IVFPQ sub-quantisers (bytes per code), comma-separated")
    p.add_argument("--ef", default="64,200")
    p.add_argument("--hnsw-m", default="16", help="HNSW M values, comma-separated")
    p.add_argument("--candidates", default="200,500,1000,2000", help="rescored search's candidate counts")
    p.add_argument("--real-model", default="", help="model for --sizes real (default: trained and cached)")
    p.add_argument("--real-epochs", type=int, default=8)
    p.add_argument("--real-queries", type=int, default=1000)
    p.add_argument("--targets", default="", help="Recall@100 targets of the frontier summary, e.g. 0.70,0.75")
    p.add_argument("--budgets", default="64,160,256,2048", help="bytes/item of the plot's panels")
    p.add_argument("--hnsw-efc", type=int, default=100)
    p.add_argument("--hnsw-seconds", type=float, default=600.0)
    p.add_argument("--methods", default="sparse,sparse-compact,asym,asym-compact,ivfpq,ivfflat,flat,hnsw")
    p.add_argument("--round-seconds", type=float, default=10.0)
    p.add_argument("--lock", default="/work/helpers/bench.lock")
    p.add_argument("--build-only", action="store_true", help="build the caches in --workdir and stop")
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--tag", default="")
    a = p.parse_args()
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    modes = set(a.methods.split(","))
    threads = [int(t) for t in a.threads.split(",")]
    date = _dt.date.today().isoformat()
    if a.sizes == "real":
        return run_real(a, workdir, modes, threads, date)
    data = Path(a.data)
    X = np.load(data / "wordnet_minilm384_f16.npy").astype(np.float32)
    qrows = np.load(data / "wordnet_split_queries.npy")
    mask = np.ones(len(X), bool)
    mask[qrows] = False
    synth = Synth(X[mask], a.noise, a.seed)
    queries = np.ascontiguousarray(synth.queries(X[qrows])[:a.queries])
    del X
    nq = len(queries)
    model, model_text = get_model(synth, a, workdir)
    qcodes = model.encode(queries)
    n0 = a.dense_n
    truth0, _ = exact_truth(synth, queries, n0, workdir / f"scale-truth-{n0}-q{nq}-s{a.seed}.npy")
    codes, enc = encode_catalogue(model, synth, n0, workdir)
    for n in [int(s) for s in a.sizes.split(",")]:
        log(f"== N = {n:,} ==")
        truths = {}
        if n == n0:
            truths["dense"] = truth0

            def source(kind):
                ind, val = (("indices", "values") if kind == "values" else ("refit_indices", "refit_values"))
                step = 1 << 18
                for lo in range(0, n, step):
                    yield lo, (np.ascontiguousarray(codes[ind][lo:lo + step]),
                               np.ascontiguousarray(codes[val][lo:lo + step]))
            cmodes = modes
            tkey = "dense"
            enc_n = enc
        else:
            cs = CodeSynth(codes["indices"], codes["values"], a.seed, a.swap, H)
            csr = CodeSynth(codes["refit_indices"], codes["refit_values"], a.seed, a.swap, H)

            def source(kind):
                return (cs if kind == "values" else csr).rows(0, n)
            cmodes = modes & {"sparse", "sparse-compact", "asym", "asym-compact"}
            tkey = "own"
            enc_n = {k: v * n / n0 for k, v in enc.items()}  # what encoding n dense rows would cost
        if a.build_only:
            if n == n0:
                dense_methods(a, n, synth, queries, [], workdir, modes - {"flat"})
            log("build only: done")
            continue
        methods = compressae_indexes(a, n, model, source, enc_n, qcodes, queries, threads, tkey, cmodes)
        keep = None
        notes = {}
        if n == n0:
            dm, keep, notes = dense_methods(a, n, synth, queries, threads, workdir, modes)
            methods += dm
            if "hnsw" in notes and not notes["hnsw"][1]:
                n_h = notes["hnsw"][0]
                truths[f"dense-{n_h}"], _ = exact_truth(synth, queries, n_h,
                                                       workdir / f"scale-truth-{n_h}-q{nq}-s{a.seed}.npy")
        meta = dict(machine(), date=date, N=n, runs=a.runs, lock=a.lock,
                    targets=[float(t) for t in a.targets.split(",")] if a.targets and n == n0 else [],
                    command="python3 benchmarks/scale.py " + " ".join(sys.argv[1:]), model=model_text)
        meta["data"] = (f"the shared set's {synth.nb:,} catalogue rows, then perturbed copies "
                        f"x' = normalise(x + sigma e), e ~ N(0, I/d), sigma = {a.noise}, up to {n0:,} rows; "
                        f"queries: the first {nq} held-out rows perturbed by the same rule; truth: exact "
                        f"float32 cosine top-100." +
                        ("" if n == n0 else f" Rows {n0:,} .. {n:,}: code-space copies of the {n0:,} codes "
                         f"(values times exp(0.2 z), the {a.swap} weakest latents redrawn by latent frequency)."))
        if n == n0:
            h = notes.get("hnsw")
            meta["note"] = (f"Build times: compressae's = encoding of the {n:,} rows ({enc['encode']:.0f} s on "
                            f"2 threads) + refit in asymmetric mode ({enc['refit']:.0f} s) + add + posting lists; "
                            f"faiss's = k-means ({a.kmeans_iters} iterations on {a.faiss_rows:,} rows) + PQ "
                            f"training + add, 2 threads; exact dense: synthesising and adding the rows; "
                            f"HNSW: adding on 2 threads, bounded by {a.hnsw_seconds:.0f} s. "
                            + ("" if not h or h[1] else
                               f"The HNSW build reached the bound after {h[0]:,} of {n:,} items: its rows "
                               f"search that prefix, and their recall is against the exact top-100 of the "
                               f"prefix ('dense-{h[0]}').")
                            + " Builds ran before timing, outside the lock, on the shared machine.")
        else:
            meta["note"] = (f"No dense vectors exist for the code-space items, so there is no dense truth and no "
                            f"dense peer at this N (IVFFlat, HNSW and exact dense would hold "
                            f"{4 * synth.d * n / 2**30:.0f} GiB of float32 vectors, over the 10 GB budget; "
                            f"IVFPQ needs them to encode). Recall is against the exhaustive sparse ranking "
                            f"of the same codes. Build s = add + posting lists + encoding scaled from the 1M "
                            f"encoding to {n:,} rows ({enc_n['encode']:.0f} s; refit {enc_n['refit']:.0f} s).")
        with Lock(a.lock):
            meta["load_before"] = load_avg()
            rows = measure(methods, truths, a, nq)
            meta["load_after"] = load_avg()
        meta["rss"] = rss_gb()
        for r in rows:
            r["N"] = n
        stem = Path(a.out_dir) / f"scale-{date}{a.tag}"
        stem.with_suffix(".md").write_text(markdown(rows, meta))
        with open(stem.with_suffix(".csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            w.writerows(rows)
        if n == n0:
            plot(rows, stem.with_suffix(".png"), f"N = {n:,}, {nq} queries, Recall@100 vs exact dense, "
                                                 f"1 thread ({meta['cpu']})",
             budgets=[int(b) for b in a.budgets.split(",")])
        print(markdown(rows, meta))
        del methods, keep
        gc.collect()
    return 0


if __name__ == "__main__":
    sys.exit(main())
