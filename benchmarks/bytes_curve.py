#!/usr/bin/env python3
"""Recall@100 against exact bytes per vector: compressae next to the quantisers.

On the shared WordNet MiniLM split (``--data``, default /work/shared/data:
116,659 catalogue rows x 384, 1,000 held-out queries, truth = each query's
exact cosine top-100; loaded by benchmarks/quality.py's ``load``), every
method compresses the L2-normalised catalogue to a stated number of bytes per
vector, from 16 B to 512 B, and ranks the catalogue for each query:

compressae (one model per latent dimension h in ``--latent-dims``, default
4096, and k in ``--ks``, default 4, 8, 16, 32, 64, trained with the library's
default recipe capped at ``--epochs`` epochs, default 3, or per k at
``--epochs-for`` (say 32=30), on 2 threads; cached in ``--workdir`` and
reused, so a curve can be run in parts, each part's methods chosen by
``--ks`` and the peers' lists, then joined by ``--merge``; a setting names
its h when h is not 4096):

- ``sparse``: cosine between k-codes (SparseIndex, sparse mode), queries
  encoded to k-codes too (what a sparse-vector engine serves); with
  ``--sparse-4k-queries`` also the same index searched with the dense
  queries, which it encodes to 4k nonzeros (its default ``query_k``);
- ``asymmetric``: reconstructed mode, dense queries against decoded items
  (item values refitted by least squares, ``model.refit``);
- bytes: ``plain`` = 8 B per nonzero (int32 index + float32 value, the
  paper's count and today's ``SparseCodes`` arrays, measured as the arrays'
  bytes per row); ``compact`` = 4 B per
  nonzero (the index's compact storage: half-precision values, 16-bit
  indices), its recall measured with compact storage itself;
- ``packed`` at each ``--pack-bits`` (8, 4): one packed row's exact size
  (``PackedCodes.bytes_per_row`` of the packed catalogue: a float32 scale,
  the smaller of bit-packed and Elias-Fano indices, whose bits grow with
  log2 h, the value levels), recall measured with the ``packed8`` /
  ``packed4`` index storage itself;
- ``dead``: the fraction of the h latents in no catalogue row's k-code.

Peers on the dense vectors (faiss, inner product = cosine on unit rows):

- PQ m x 8 bits (m bytes), m in ``--pq`` (m divides 384); OPQ + PQ in
  ``--opq``; the codebooks' k-means sample ``--pq-rows`` = 16,384 rows and OPQ's rotation ``--opq-rows`` = 16,384 rows (faiss's defaults, 65,536, took too long on the loaded machine);
- PCA + int8: the first ``dims`` principal axes (no centring, renormalised),
  faiss ``IndexScalarQuantizer(QT_8bit)`` (``dims`` bytes), dims in ``--pca``;
- binary, Hamming distance (``bits / 8`` bytes): ``sign-rp``, the sign of a
  random rotation (stacked random orthogonal 384 x 384 blocks for more than
  384 bits), bits in ``--rp-bits``; ``itq``: PCA to ``bits`` axes then
  ITQ's learned rotation (50 iterations), bits in ``--itq-bits`` (<= 384).

Training time (fit / train) and encoding time of the 116,659 rows are
measured in the same run (compressae on 2 threads, faiss on ``--faiss-threads`` = 1; other processes share the machine, so
the times are noisy: the report gives the load average).

Writes ``bytes-curve-<date>.csv``, ``.md`` (table) and ``.png`` (Recall@100
against bytes per vector, log scale) to ``--out-dir`` (benchmarks/results).

Run:  python3 benchmarks/bytes_curve.py          # about 30 minutes on 2 busy cores
Needs numpy, faiss-cpu, matplotlib and the compressae package.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
try:
    import compressae
except ImportError:
    sys.path.insert(0, str(REPO / "python"))
    import compressae
import faiss

from quality import load  # noqa: E402  (the shared split, one definition)

H = 4096
TOP = 100


def log(*args) -> None:
    print(time.strftime("%H:%M:%S"), *args, file=sys.stderr, flush=True)


def unit(a):
    return np.ascontiguousarray(a / np.linalg.norm(a, axis=1, keepdims=True), dtype=np.float32)


class Runner:
    def __init__(self, ids, truth):
        self.ids, self.truth, self.rows = ids, truth, []

    def add(self, family, variant, nbytes, found, train_s=None, encode_s=None, note="", h=None, dead=None,
            steps=None):
        """``found``: the top ids per query, or (top ids, search seconds) from ``search``."""
        found, search_s = found if isinstance(found, tuple) else (found, None)
        r = compressae.recall_at_n(self.ids[found], self.truth)
        self.rows.append(dict(family=family, variant=variant, bytes=float(nbytes), recall=r,
                              train_s=train_s, encode_s=encode_s, note=note, h=h, dead=dead, steps=steps,
                              search_s=search_s))
        log(f"  {family:28s} {variant:24s} {nbytes:7.1f} B  R@100 {r:.3f}")


# ---------------------------------------------------------------- compressae

def epochs_for(k, a):
    """``--epochs``, or the count ``--epochs-for`` names for this k."""
    for item in filter(None, a.epochs_for.split(",")):
        key, value = item.split("=")
        if int(key) == k:
            return int(value)
    return a.epochs


def get_model(h, k, C, a, workdir):
    epochs = epochs_for(k, a)
    path = workdir / f"bytes-curve-h{h}-k{k}-e{epochs}.safetensors"
    meta = path.with_suffix(".json")
    if path.is_file() and meta.is_file():
        saved = json.loads(meta.read_text())
        return compressae.CompresSAE.load(path), saved["train_s"], saved.get("steps")
    model = compressae.CompresSAE(C.shape[1], h, k, seed=0)
    t0 = time.perf_counter()
    model.fit(C, epochs=epochs, seed=1, num_threads=2)
    train_s = time.perf_counter() - t0
    model.save(path)
    meta.write_text(json.dumps(dict(train_s=train_s, steps=len(model.history_))))
    return model, train_s, len(model.history_)


def unpack(packed):
    for name in ("unpack", "to_codes", "decode"):
        fn = getattr(packed, name, None)
        if callable(fn):
            return fn()
    fn = getattr(compressae.SparseCodes, "unpack", None)
    if callable(fn):
        return fn(packed)
    raise AttributeError("no way to unpack found")


def search(index, queries):
    """The top-100 ids of each query and the seconds of the one search call
    (all queries, the library's default threads; a single, noisy run)."""
    t0 = time.perf_counter()
    found = index.search(queries, n=TOP)[1]
    return found, time.perf_counter() - t0


def run_compressae(h, k, C, Q, a, workdir, run: Runner):
    model, train_s, steps = get_model(h, k, C, a, workdir)
    t0 = time.perf_counter()
    codes = model.encode(C)
    enc_s = time.perf_counter() - t0
    used = np.zeros(h, bool)
    used[np.asarray(codes.indices).ravel()] = True
    dead = 1.0 - used.mean()
    log(f"  h = {h}, k = {k}: trained in {train_s:.1f} s ({steps} steps), {dead:.1%} of the latents dead")
    t0 = time.perf_counter()
    refit = model.refit(C, codes)
    refit_s = time.perf_counter() - t0
    qcodes = model.encode(Q)
    name = f"k={k}" if h == H else f"h={h}, k={k}"
    add = lambda *args, **kw: run.add(*args, h=h, dead=dead, steps=steps, **kw)
    for storage in ("standard", "compact"):
        # The standard storage keeps SparseCodes' own arrays; compact halves both.
        plain = (codes.indices.nbytes + codes.values.nbytes) / len(codes)
        per_row = plain if storage == "standard" else plain / 2
        label = "plain (int32 + f32)" if storage == "standard" else "compact storage (u16 + f16)"
        index = compressae.SparseIndex(model, mode="sparse", storage=storage)
        index.add(codes)
        add("compressae sparse", f"{name}, {label}", per_row, search(index, qcodes),
            train_s, enc_s, "k-code queries")
        if a.sparse_4k_queries:
            add("compressae sparse, 4k-code queries", f"{name}, {label}", per_row,
                search(index, Q), train_s, enc_s,
                f"dense queries encoded by the index to {4 * k} nonzeros (its default query_k)")
        index.close()
        index = compressae.SparseIndex(model, mode="reconstructed", storage=storage)
        index.add(refit)
        add("compressae asymmetric", f"{name}, {label}", per_row, search(index, Q),
            train_s, enc_s + refit_s, "dense queries, refitted item values")
        index.close()
    for bits in [int(b) for b in a.pack_bits.split(",") if b]:
        # The packed index storages keep exactly what PackedCodes keeps (the
        # levels and a scale per item) and rank like brute force over the
        # dequantised codes; the bytes are one packed row's (index coding
        # "auto", the smaller of bit-packed and Elias-Fano indices).
        t0 = time.perf_counter()
        packed = codes.pack(bits=bits)
        pack_s = time.perf_counter() - t0
        size = packed.bytes_per_row
        coding = f"; {packed.index_coding} indices"
        modes = [("sparse", codes, qcodes, "compressae sparse", "k-code queries")]
        if a.sparse_4k_queries:
            modes.append(("sparse", codes, Q, "compressae sparse, 4k-code queries", "dense queries encoded by the index"))
        modes.append(("reconstructed", refit, Q, "compressae asymmetric", "dense queries, refitted item values"))
        for mode, items, queries, fam, note in modes:
            index = compressae.SparseIndex(model, mode=mode, storage=f"packed{bits}")
            index.add(items)
            add(fam, f"{name}, packed {bits}-bit values", size, search(index, queries), train_s,
                enc_s + pack_s + (refit_s if mode == "reconstructed" else 0),
                note + f"; packed{bits} index storage" + coding)
            index.close()


# ---------------------------------------------------------------- peers

def run_pq(C, Q, m, opq, run: Runner, opq_rows=0, pq_rows=0):
    spec = f"OPQ{m},PQ{m}" if opq else f"PQ{m}"
    index = faiss.index_factory(C.shape[1], spec, faiss.METRIC_INNER_PRODUCT)
    note = ""
    inner = faiss.downcast_index(index.index if opq else index)
    # IndexPQ also trains a polysemous code ordering for Hamming pre-filtering
    # by default: minutes of simulated annealing that plain ADC ranking never uses.
    inner.do_polysemous_training = False
    pq = inner.pq
    if pq_rows:
        # faiss samples at most 256 rows per centroid (65,536) for each sub-quantiser's
        # k-means; fewer keep the training to minutes on a loaded machine.
        pq.cp.max_points_per_centroid = max(1, pq_rows // pq.ksub)
        note = f"PQ codebooks trained on {pq_rows:,} rows"
    if opq and opq_rows:
        # OPQ alternates rotation and PQ training: capped so that it ends in minutes here.
        faiss.downcast_VectorTransform(index.chain.at(0)).max_train_points = opq_rows
        note += f"; OPQ rotation trained on {opq_rows:,} rows"
    t0 = time.perf_counter()
    index.train(C)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    codes = index.sa_encode(C)
    enc_s = time.perf_counter() - t0
    # The inner product of the dense query with each decoded item is the
    # ranking of faiss's asymmetric (ADC) search; one BLAS product computes it
    # faster than IndexPQ.search on this machine.
    decoded = index.sa_decode(codes)
    _, found = compressae.exact_search(decoded, Q, n=TOP, metric="ip")
    run.add("faiss OPQ" if opq else "faiss PQ", f"m={m} x 8 bits", codes.shape[1], found, train_s, enc_s, note)


def pca_axes(C, workdir):
    """Principal axes (rows, by decreasing variance) and the time to find them (cached)."""
    path = workdir / "pca-axes.npz"
    if path.is_file():
        z = np.load(path)
        return z["vt"], float(z["seconds"])
    t0 = time.perf_counter()
    X = C - C.mean(0)
    w, v = np.linalg.eigh(X.T @ X)
    vt = np.ascontiguousarray(v[:, ::-1].T)
    seconds = time.perf_counter() - t0
    np.savez(path, vt=vt, seconds=seconds)
    return vt, seconds


def run_pca_int8(C, Q, vt, pca_s, dims, run: Runner):
    t0 = time.perf_counter()
    P = vt[:dims].T
    c, q = unit(C @ P), unit(Q @ P)
    index = faiss.IndexScalarQuantizer(dims, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index.train(c)
    train_s = pca_s + time.perf_counter() - t0
    t0 = time.perf_counter()
    codes = index.sa_encode(c)
    enc_s = time.perf_counter() - t0
    _, found = compressae.exact_search(index.sa_decode(codes), q, n=TOP, metric="ip")
    run.add("PCA + int8", f"{dims} dims", codes.shape[1], found, train_s, enc_s,
            "inner product with the decoded items")


def hamming(cb, qb, bits):
    index = faiss.IndexBinaryFlat(bits)
    index.add(cb)
    return index.search(qb, TOP)[1]


def run_sign_rp(C, Q, bits, run: Runner):
    rng = np.random.default_rng(7)
    d = C.shape[1]
    t0 = time.perf_counter()
    blocks = []
    for _ in range((bits + d - 1) // d):
        qm, _ = np.linalg.qr(rng.standard_normal((d, d)))
        blocks.append(qm)
    R = np.concatenate(blocks, 1)[:, :bits].astype(np.float32)
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cb = np.packbits(C @ R > 0, axis=1)
    enc_s = time.perf_counter() - t0
    run.add("binary sign(random rotation)", f"{bits} bits", bits / 8,
            hamming(cb, np.packbits(Q @ R > 0, axis=1), bits), train_s, enc_s)


def run_itq(C, Q, vt, pca_s, bits, run: Runner, iters=50):
    rng = np.random.default_rng(11)
    t0 = time.perf_counter()
    mean = C.mean(0)
    P = vt[:bits].T
    V = (C - mean) @ P
    R, _ = np.linalg.qr(rng.standard_normal((bits, bits)))
    for _ in range(iters):
        B = np.sign(V @ R)
        u, _, wt = np.linalg.svd(B.T @ V)
        R = (u @ wt).T
    W = (P @ R).astype(np.float32)
    train_s = pca_s + time.perf_counter() - t0
    t0 = time.perf_counter()
    cb = np.packbits((C - mean) @ W > 0, axis=1)
    enc_s = time.perf_counter() - t0
    run.add("binary ITQ", f"{bits} bits", bits / 8, hamming(cb, np.packbits((Q - mean) @ W > 0, axis=1), bits),
            train_s, enc_s)


# ---------------------------------------------------------------- output

def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 6))
    groups = {}
    dims = {str(r.get("h")) for r in rows if r["family"].startswith("compressae")}
    for r in rows:
        key = r["family"]
        v = r["variant"]
        if r["family"].startswith("compressae"):
            # One line per storage (and per h when the rows hold several), through the k values.
            key += " (" + (f"h={r['h']}, " if len(dims) > 1 else "") + v.split(", ")[-1] + ")"
        groups.setdefault(key, []).append((r["bytes"], r["recall"]))
    for key, pts in sorted(groups.items()):
        pts.sort()
        mine = key.startswith("compressae")
        ls = ("--" if "compact" in key or "packed" in key else "-") if mine else ":"
        ax.plot(*zip(*pts), ls, marker="o", ms=4, lw=2.2 if mine else 1.2, label=key)
    ax.set_xscale("log", base=2)
    ax.set_xticks([16, 32, 64, 128, 256, 512])
    ax.set_xticklabels(["16", "32", "64", "128", "256", "512"])
    ax.set_xlim(12, 600)
    ax.set_xlabel("bytes per vector (exact)")
    ax.set_ylabel("Recall@100 (1,000 held-out queries)")
    ax.set_title("Shared MiniLM set (116,659 x 384): recall against bytes per vector")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def markdown(rows, meta):
    lines = [f"# Recall@100 against bytes per vector ({meta['date']})", "",
             f"Command: `{meta['command']}`", "",
             f"Machine: {meta['machine']}; commit {meta['commit']}; compressae {compressae.library_version()}, "
             f"faiss {faiss.__version__}. Load average before {meta['load_before']}, after {meta['load_after']} "
             f"(2 cores shared with other processes: training and encoding times are noisy, single runs). "
             f"compressae models: h = {meta['latent_dims']}, the default recipe capped at {meta['epochs']} epochs, "
             f"2 threads.", "",
             "| method | setting | bytes/vector | Recall@100 | dead latents | train s | encode s (116,659 rows) | "
             "search s (1,000 queries) | note |",
             "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (r["family"], r["bytes"], r["variant"])):
        f = lambda x: "" if x is None else f"{x:.1f}"
        dead = "" if r.get("dead") is None else f"{r['dead']:.1%}"
        search_s = "" if r.get("search_s") is None else f"{r['search_s']:.2f}"
        lines.append(f"| {r['family']} | {r['variant']} | {r['bytes']:.0f} | {r['recall']:.3f} | {dead} | "
                     f"{f(r['train_s'])} | {f(r['encode_s'])} | {search_s} | {r['note']} |")
    lines += ["", "Best Recall@100 at each budget (bytes <= B):", "",
              "| budget B | best compressae (mode, setting) | best quantiser (method, setting) |",
              "|---:|---|---|"]
    for b in (16, 32, 48, 64, 96, 128, 256, 512):
        mine = [r for r in rows if r["family"].startswith("compressae") and r["bytes"] <= b]
        peer = [r for r in rows if not r["family"].startswith("compressae") and r["bytes"] <= b]
        fm = lambda rs: "-" if not rs else (lambda r: f"{r['recall']:.3f} ({r['family']}, {r['variant']}, "
                                                     f"{r['bytes']:.0f} B)")(max(rs, key=lambda r: r["recall"]))
        lines.append(f"| {b} | {fm(mine)} | {fm(peer)} |")
    dims = sorted({int(r["h"]) for r in rows if r["family"].startswith("compressae") and r.get("h") not in (None, "")})
    if len(dims) > 1:
        lines += ["", "Recall@100 by latent dimension h at the same k (bytes per vector in brackets; "
                  "dead = latents in no catalogue row's code):", "",
                  "| k | mode | storage | " + " | ".join(f"h = {h}" for h in dims) + " |",
                  "|---:|---|---|" + "---:|" * len(dims)]
        cells = {}
        for r in rows:
            if r["family"].startswith("compressae") and r.get("h") not in (None, ""):
                setting = r["variant"].split(", ")
                k = int(next(s for s in setting if s.startswith("k="))[2:])
                storage = setting[-1]
                cells[(k, r["family"][len("compressae "):], storage, int(r["h"]))] = r
        for key in sorted({c[:3] for c in cells}):
            line = f"| {key[0]} | {key[1]} | {key[2]} | "
            for h in dims:
                r = cells.get(key + (h,))
                line += "- | " if r is None else f"{r['recall']:.3f} ({r['bytes']:.0f} B) | "
            lines.append(line.rstrip())
        lines += ["", "| k | " + " | ".join(f"h = {h}: dead, steps, train s" for h in dims) + " |",
                  "|---:|" + "---|" * len(dims)]
        for k in sorted({c[0] for c in cells}):
            line = f"| {k} | "
            for h in dims:
                r = next((r for c, r in cells.items() if c[0] == k and c[3] == h), None)
                line += "- | " if r is None else (f"{r['dead']:.1%}, " if r["dead"] is not None else ", ") + \
                    (f"{r['steps']}, " if r.get("steps") not in (None, "") else ", ") + \
                    (f"{r['train_s']:.0f} s | " if r["train_s"] is not None else " | ")
            lines.append(line.rstrip())
    return "\n".join(lines) + "\n"


def log_rows(lines):
    """Rows from the progress lines of a run stopped before it wrote its CSV
    (family and setting, bytes, recall; no times)."""
    import re
    families = ("compressae sparse, 4k-code queries", "compressae sparse", "compressae asymmetric", "faiss PQ", "faiss OPQ", "PCA + int8",
                "binary sign(random rotation)", "binary ITQ")
    pattern = re.compile(r"^\S+   (.+?) +([0-9.]+) B  R@100 ([0-9.]+)$")
    for line in lines:
        m = pattern.match(line.rstrip("\n"))
        family = m and next((f for f in families if m.group(1).startswith(f + " ")), None)
        if family:
            yield dict(family=family, variant=m.group(1)[len(family):].strip(), bytes=m.group(2),
                       recall=m.group(3), train_s="", encode_s="",
                       note="from the run's log: stopped at the session's deadline, times not recorded",
                       h="", dead="", steps="", search_s="")


def write(rows, meta, stem, plot_too=True):
    """Table, CSV and plot of the rows so far (rewritten after every k; the
    CSV and table after every method, so that a stopped run keeps its times)."""
    meta["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with open(stem.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    stem.with_suffix(".md").write_text(markdown(rows, meta))
    if plot_too:
        plot(rows, stem.with_suffix(".png"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default="/work/shared/data")
    p.add_argument("--workdir", default="/tmp/compressae-bytes-curve")
    p.add_argument("--ks", default="4,32,8,16,64", help="in the order run (results are written after each)")
    p.add_argument("--latent-dims", default=str(H),
                   help="latent dimensions h, e.g. 4096,8192 (every k at each h, in this order)")
    p.add_argument("--sparse-4k-queries", action="store_true",
                   help="also search the sparse indexes with dense queries (encoded to 4k nonzeros)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--epochs-for", default="", help="per-k epoch caps, e.g. 32=30,64=20 (else --epochs)")
    p.add_argument("--pack-bits", default="8,4")
    p.add_argument("--pq", default="16,24,32,48,64,96,128")
    p.add_argument("--opq", default="16,32,64,128")
    p.add_argument("--pq-rows", type=int, default=16384,
                   help="rows each PQ sub-quantiser's k-means samples (0: faiss's default, 65,536)")
    p.add_argument("--opq-rows", type=int, default=16384, help="rows OPQ trains its rotation on (0: all)")
    p.add_argument("--faiss-threads", type=int, default=1)
    p.add_argument("--pca", default="16,32,64,128,256,384")
    p.add_argument("--rp-bits", default="128,256,512,1024,2048")
    p.add_argument("--itq-bits", default="128,256,384")
    p.add_argument("--out-dir", default=str(HERE / "results"))
    p.add_argument("--tag", default="")
    p.add_argument("--name", default="bytes-curve", help="output file names: <name>-<date><tag>.csv, .md, .png")
    p.add_argument("--merge", default="",
                   help="comma-separated CSV files (or logs, for runs stopped early) of earlier (partial) runs: join them (first row of a method "
                        "and setting wins) into one table and plot, and run nothing")
    a = p.parse_args()
    workdir = Path(a.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    date = _dt.date.today().isoformat()
    stem = out / f"{a.name}-{date}{a.tag}"
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name:")), "?")
    meta = dict(date=date, command="python3 benchmarks/bytes_curve.py " + " ".join(sys.argv[1:]),
                machine=f"{cpu}, {os.cpu_count()} CPUs",
                epochs=f"{a.epochs}" + (f" ({a.epochs_for}: k=epochs)" if a.epochs_for else ""),
                latent_dims=a.latent_dims.replace(",", ", "),
                commit=subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                      capture_output=True, text=True).stdout.strip(),
                load_before=" ".join(f"{x:.2f}" for x in os.getloadavg()))
    if a.merge:
        rows, seen = [], set()
        for path in a.merge.split(","):
            with open(path) as f:
                source = csv.DictReader(f) if path.endswith(".csv") else log_rows(f)
                for r in source:
                    if (r["family"], r["variant"]) in seen:
                        continue
                    seen.add((r["family"], r["variant"]))
                    # Files written before the h and dead columns: h = 4096 throughout.
                    r.setdefault("h", H if r["family"].startswith("compressae") else "")
                    r.setdefault("dead", "")
                    r.setdefault("steps", "")
                    r.setdefault("search_s", "")
                    for key in ("bytes", "recall", "train_s", "encode_s", "dead", "search_s"):
                        r[key] = float(r[key]) if r[key] not in ("", "None") else None
                    rows.append(r)
        meta["command"] += "  (joins the CSV files of the runs named in the .md)"
        write(rows, meta, stem)
        print(markdown(rows, meta))
        return 0
    C, Q, ids, truth = load(a.data)
    C, Q = unit(C), unit(Q)
    faiss.omp_set_num_threads(a.faiss_threads)
    run = Runner(ids, truth)
    ints = lambda s: [int(x) for x in s.split(",") if x]
    # compressae and the quantisers alternate, so that load from other
    # processes spreads over both rather than over one family's times.
    vt, pca_s = pca_axes(C, workdir) if a.pca or a.itq_bits else (None, 0.0)
    peers = ([("pq", m) for m in ints(a.pq)] + [("pca", m) for m in ints(a.pca)]
             + [("rp", b) for b in ints(a.rp_bits)] + [("itq", b) for b in ints(a.itq_bits)]
             + [("opq", m) for m in ints(a.opq)])
    models = [(h, k) for h in ints(a.latent_dims) for k in ints(a.ks)]
    per_k = max(1, -(-len(peers) // max(1, len(models))))
    for i, hk in enumerate(models or [None]):
        if hk is not None:
            log(f"== compressae h = {hk[0]}, k = {hk[1]}")
            run_compressae(*hk, C, Q, a, workdir, run)
        for kind, v in peers[i * per_k:(i + 1) * per_k]:
            if kind == "pq":
                run_pq(C, Q, v, False, run, pq_rows=a.pq_rows)
            elif kind == "opq":
                run_pq(C, Q, v, True, run, a.opq_rows, a.pq_rows)
            elif kind == "pca":
                run_pca_int8(C, Q, vt, pca_s, v, run)
            elif kind == "rp":
                run_sign_rp(C, Q, v, run)
            else:
                run_itq(C, Q, vt, pca_s, v, run)
            write(run.rows, meta, stem, plot_too=False)
        if run.rows:
            write(run.rows, meta, stem)
    print(markdown(run.rows, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())
