#!/usr/bin/env python3
"""Quality benchmark: Recall@100 against compression, compressae and its peers.

On the WordNet MiniLM embeddings (``--data``, default ../shared/data; see its
README): 117,659 x 384, 1,000 held-out queries, every other row is the
catalogue (116,659 items), truth = each query's exact cosine top-100.

For each k in ``--ks`` (default 8, 16, 32, 64, 128, 256) at h = 4096, each
training recipe in ``--recipes`` trains a model on the catalogue:

- ``reference``: the PyTorch reference's recipe, faithfully: kaiming-uniform
  encoder (``init="reference"``), Adam lr 1e-3 constant, batch 4096,
  ``--reference-epochs`` (default 9, about 250 steps) passes;
- ``default``: ``CompresSAE(384, 4096, k).fit(catalogue)`` with the library's
  defaults (see compressae.CompresSAE.fit: tied initialisation, warm-up,
  a plateau schedule on a held-out validation loss that also stops training,
  and the similarity term).

and reports Recall@100 in the three retrieval modes (sparse: cosine between
codes, also with query codes of 4k nonzeros against item codes of k
("sparse+4k-query", the index's default for dense queries); reconstructed:
cosine between decoded vectors; asymmetric: dense query against decoded
items), the last two both with the encoder's values
and with values refitted by least squares ("+refit": ``encode(refit=True)``,
what a reconstructed index stores for dense rows), the fraction of dead latents at the end of
training, epochs, steps and training time.

Peers at comparable bytes per vector (``--peer-bytes``), on the
L2-normalised dense vectors:

- PCA truncation to m float32 dimensions (4m bytes; the stand-in for a
  Matryoshka model truncated to m dimensions), cosine in the projected space;
- scalar int8 after PCA to m dimensions (m bytes; m = 384 is plain int8),
  faiss ``IndexScalarQuantizer(QT_8bit)``, inner product of the decoded
  vectors;
- binary: sign bits after PCA to m dimensions (m / 8 bytes; m = 384 is the
  sign of the raw vector), Hamming distance;
- faiss PQ and OPQ with M sub-quantisers of 8 bits (M bytes, M dividing d;
  ``--pq-bytes``, ``--opq-bytes``: OPQ is slow to train), inner product with
  the dense query (asymmetric, like compressae's asymmetric mode).

The recipes and the peers can run in separate calls (``--recipes ""``,
``--no-peers``, ``--ks``) whose CSV files a last call joins with ``--merge``
into one table and plot.

Bytes per vector of compressae are the paper's: one int32 index and one
float32 value per nonzero, 8k (its compact storage needs 4k in reconstructed
mode and 6k in sparse mode; see benchmarks/retrieval.py). Compression factor =
1536 / bytes (384 float32 = 1536 bytes).

Writes ``quality-<date>.csv`` (one row per method and size), ``.md`` (the
tables, the machine and the settings) and ``.png`` (Recall@100 against the
compression factor, in the style of the paper's figure) to ``--out-dir``
(default benchmarks/results), plus an ablation table at k = 32 when
``--ablation`` is given: each change of the default recipe turned off alone.

Run:  python3 benchmarks/quality.py              # everything: about an hour on 2 cores
      python3 benchmarks/quality.py --quick      # k = 32 only, peers at 256 bytes: a few minutes
Needs numpy, the compressae package, faiss-cpu and matplotlib (pip).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

import compressae

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H = 4096
N_TOP = 100


def load(data_dir):
    X = np.load(os.path.join(data_dir, "wordnet_minilm384_f16.npy")).astype(np.float32)
    queries = np.load(os.path.join(data_dir, "wordnet_split_queries.npy"))
    truth = np.load(os.path.join(data_dir, "wordnet_gt_top100.npy"))
    mask = np.ones(len(X), bool)
    mask[queries] = False
    catalogue_ids = np.nonzero(mask)[0]
    return X[catalogue_ids], X[queries], catalogue_ids, truth


def normalize(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


# ----------------------------------------------------------------- compressae

def train(recipe, k, C, a, overrides=None):
    """A model trained by one recipe: "reference" (the PyTorch reference's
    initialisation and training, ``--reference-epochs`` epochs) or "default"
    (the library's defaults, at most ``--max-epochs`` epochs when given),
    with ``overrides`` = {"model": {...}, "fit": {...}} changes."""
    overrides = overrides or {}
    if recipe == "reference":
        model = compressae.CompresSAE(C.shape[1], H, k, seed=a.seed, init="reference")
        fit = dict(compressae.REFERENCE_TRAINING, epochs=a.reference_epochs)
    else:
        model = compressae.CompresSAE(C.shape[1], H, k, seed=a.seed, **overrides.get("model", {}))
        fit = {} if a.max_epochs is None else dict(epochs=a.max_epochs)
    fit.update(overrides.get("fit", {}))
    start = time.perf_counter()
    model.fit(C, seed=a.seed + 1, num_threads=a.threads, **fit)
    seconds = time.perf_counter() - start
    return model, seconds


def evaluate_model(model, C, Q, catalogue_ids, truth):
    """Recall@100 of every mode. "sparse" is the cosine between k-codes of
    items and queries; "sparse+4k-query" searches the same index with dense
    queries, which it encodes with 4k nonzeros (its default ``query_k``; the
    items keep k). "reconstructed" and "asymmetric" use the
    encoder's values (docs/maths.md's codes); the "+refit" modes use values refitted
    by least squares (``encode(refit=True)``), which is what a reconstructed
    index stores when it encodes dense rows itself."""
    codes_c, codes_q = model.encode(C), model.encode(Q)
    recall = {}
    index = compressae.SparseIndex(model, mode="sparse")
    index.add(codes_c)
    _, ids = index.search(codes_q, n=N_TOP)
    recall["sparse"] = compressae.recall_at_n(catalogue_ids[ids], truth)
    # Dense queries: the index encodes them with its default query_k = 4k nonzeros.
    _, ids = index.search(Q, n=N_TOP)
    recall["sparse+4k-query"] = compressae.recall_at_n(catalogue_ids[ids], truth)
    for suffix, items, queries in (("", codes_c, codes_q),
                                   ("+refit", model.refit(C, codes_c), model.refit(Q, codes_q))):
        index = compressae.SparseIndex(model, mode="reconstructed")
        index.add(items)
        _, ids = index.search(queries, n=N_TOP)
        recall["reconstructed" + suffix] = compressae.recall_at_n(catalogue_ids[ids], truth)
        _, ids = index.search(Q, n=N_TOP)
        recall["asymmetric" + suffix] = compressae.recall_at_n(catalogue_ids[ids], truth)
    return recall


MODES = ("sparse", "sparse+4k-query", "reconstructed", "asymmetric", "reconstructed+refit", "asymmetric+refit")


# ---------------------------------------------------------------------- peers

def pca_basis(Cn):
    mean = Cn.mean(0)
    _, _, vt = np.linalg.svd(Cn - mean, full_matrices=False)
    return vt


def rotate(Cn, Qn, vt, dims):
    """Items and queries projected on the first ``dims`` principal axes and
    renormalised. The projection keeps the raw coordinates (no centring), as
    a Matryoshka prefix would."""
    if dims >= Cn.shape[1]:
        return Cn, Qn
    P = vt[:dims].T
    return np.ascontiguousarray(normalize(Cn @ P)), np.ascontiguousarray(normalize(Qn @ P))


def peer_pca(Cn, Qn, vt, dims, catalogue_ids, truth):
    _, ids = compressae.exact_search(*rotate(Cn, Qn, vt, dims), n=N_TOP)
    return compressae.recall_at_n(catalogue_ids[ids], truth)


def peer_int8(faiss, Cn, Qn, vt, dims, catalogue_ids, truth):
    c, q = rotate(Cn, Qn, vt, dims)
    index = faiss.IndexScalarQuantizer(c.shape[1], faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
    index.train(c)
    index.add(c)
    _, ids = index.search(q, N_TOP)
    return compressae.recall_at_n(catalogue_ids[ids], truth)


def peer_binary(faiss, Cn, Qn, vt, dims, catalogue_ids, truth):
    c, q = rotate(Cn, Qn, vt, dims)
    index = faiss.IndexBinaryFlat(c.shape[1])
    index.add(np.packbits(c > 0, axis=1))
    _, ids = index.search(np.packbits(q > 0, axis=1), N_TOP)
    return compressae.recall_at_n(catalogue_ids[ids], truth)


def peer_pq(faiss, Cn, Qn, m, opq, catalogue_ids, truth):
    d = Cn.shape[1]
    spec = f"OPQ{m},PQ{m}" if opq else f"PQ{m}"
    index = faiss.index_factory(d, spec, faiss.METRIC_INNER_PRODUCT)
    index.train(Cn)
    index.add(Cn)
    _, ids = index.search(Qn, N_TOP)
    return compressae.recall_at_n(catalogue_ids[ids], truth)


# -------------------------------------------------------------------- output

def machine():
    try:
        model = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        name = next((line.split(":", 1)[1].strip() for line in model.splitlines()
                     if line.startswith("Model name")), platform.processor())
    except OSError:
        name = platform.processor()
    return f"{name}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def plot(rows, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    styles = {
        ("compressae default", "sparse"): dict(color="tab:red", marker="o"),
        ("compressae default", "sparse+4k-query"): dict(color="darkred", marker="o", linestyle="-."),
        ("compressae default", "reconstructed"): dict(color="tab:red", marker="s", linestyle="--", alpha=0.5),
        ("compressae default", "asymmetric"): dict(color="tab:red", marker="^", linestyle=":", alpha=0.5),
        ("compressae default", "reconstructed+refit"): dict(color="darkred", marker="s"),
        ("compressae default", "asymmetric+refit"): dict(color="darkred", marker="^", linestyle=":"),
        ("compressae reference", "sparse"): dict(color="tab:orange", marker="o", alpha=0.7),
        ("compressae reference", "reconstructed"): dict(color="tab:orange", marker="s", linestyle="--", alpha=0.7),
        ("PCA truncation", ""): dict(color="tab:blue", marker="D"),
        ("PCA + int8", ""): dict(color="tab:cyan", marker="d"),
        ("binary", ""): dict(color="tab:gray", marker="x"),
        ("faiss PQ", ""): dict(color="tab:green", marker="v"),
        ("faiss OPQ", ""): dict(color="tab:olive", marker="<"),
    }
    for (method, mode), style in styles.items():
        points = sorted((r["compression"], r["recall"]) for r in rows
                        if r["method"] == method and r["mode"] == mode)
        if points:
            label = f"{method} ({mode})" if mode else method
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, **style)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("compression factor (float32 bytes / bytes per vector)")
    ax.set_ylabel(f"Recall@{N_TOP}")
    ax.set_ylim(0, 1)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--ks", default="8,16,32,64,128,256")
    ap.add_argument("--recipes", default="default,reference")
    ap.add_argument("--reference-epochs", type=int, default=9)
    ap.add_argument("--max-epochs", type=int, help="cap of the default recipe's epochs (library default: 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--peer-bytes", default="32,48,64,96,128,192,256,384,512,768,1024,1536",
                    help="bytes per vector at which the peers are measured (where each can be)")
    ap.add_argument("--pq-bytes", default="32,64,128,192,384",
                    help="faiss PQ sizes (M sub-quantisers of 8 bits; M must divide d)")
    ap.add_argument("--opq-bytes", default="64,128", help="faiss OPQ sizes (slow to train)")
    ap.add_argument("--save-models", metavar="DIR", help="also save each trained model to DIR/<recipe>-k<k>.safetensors")
    ap.add_argument("--ablation", action="store_true", help="also the k = 32 ablation of the default recipe")
    ap.add_argument("--quick", action="store_true", help="k = 32 only, peers at 256 bytes")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    ap.add_argument("--tag", default="", help="suffix of the output file names")
    ap.add_argument("--merge", nargs="*", default=[],
                    help="CSV files of earlier runs whose rows join this run's table and plot "
                         "(e.g. the largest k run separately with its own --max-epochs)")
    a = ap.parse_args()
    ks = [32] if a.quick else [int(v) for v in a.ks.split(",") if v]
    recipes = [r for r in a.recipes.split(",") if r]
    for r in recipes:
        if r not in ("default", "reference"):
            sys.exit(f"unknown recipe {r!r}")

    C, Q, catalogue_ids, truth = load(a.data)
    d = C.shape[1]
    dense_bytes = 4 * d
    started = _dt.datetime.now()
    rows = []
    for path in a.merge:
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                for key in ("bytes", "steps", "epochs"):
                    if r.get(key):
                        r[key] = int(float(r[key]))
                for key in ("compression", "recall", "dead", "train_seconds"):
                    if r.get(key):
                        r[key] = float(r[key])
                rows.append(r)

    def add(method, mode, param, bytes_per_vector, recall, **extra):
        row = dict(method=method, mode=mode, param=param, bytes=bytes_per_vector,
                   compression=round(dense_bytes / bytes_per_vector, 3), recall=round(float(recall), 4), **extra)
        rows.append(row)
        print(json.dumps(row), flush=True)

    trained = {}
    for k in ks:
        for recipe in recipes:
            model, seconds = train(recipe, k, C, a)
            recall = evaluate_model(model, C, Q, catalogue_ids, truth)
            extra = dict(dead=round(float(model.dead_latents_[-1]), 4), steps=len(model.history_),
                         epochs=len(model.validation_loss_) or a.reference_epochs,
                         validation_loss=round(float(model.validation_loss_[-1]), 4) if len(model.validation_loss_) else "",
                         train_seconds=round(seconds, 1))
            for mode in MODES:
                add(f"compressae {recipe}", mode, f"k={k}", 8 * k, recall[mode], **extra)
            trained[(recipe, k)] = (recall, extra)
            if a.save_models:
                os.makedirs(a.save_models, exist_ok=True)
                model.save(os.path.join(a.save_models, f"{recipe}-k{k}.safetensors"))
            model.close()

    ablation = []
    if a.ablation:
        for name, change in ABLATIONS:
            if not change and ("default", 32) in trained:
                recall, extra = trained[("default", 32)]
                ablation.append(dict(change=name, dead=extra["dead"], steps=extra["steps"],
                                     train_seconds=extra["train_seconds"],
                                     **{m: round(v, 4) for m, v in recall.items()}))
                continue
            model, seconds = train("default", 32, C, a, change)
            recall = evaluate_model(model, C, Q, catalogue_ids, truth)
            ablation.append(dict(change=name, dead=round(float(model.dead_latents_[-1]), 4),
                                 steps=len(model.history_), train_seconds=round(seconds, 1),
                                 **{m: round(v, 4) for m, v in recall.items()}))
            print(json.dumps(ablation[-1]), flush=True)
            model.close()

    if not a.no_peers:
        import faiss
        faiss.omp_set_num_threads(a.threads or os.cpu_count())
        Cn, Qn = normalize(C), normalize(Q)
        vt = pca_basis(Cn)
        byte_points = [256] if a.quick else [int(v) for v in a.peer_bytes.split(",")]
        pq_bytes = {int(v) for v in a.pq_bytes.split(",") if v}
        opq_bytes = {int(v) for v in a.opq_bytes.split(",") if v}
        for b in byte_points:
            if b % 4 == 0 and b // 4 <= d:
                add("PCA truncation", "", f"{b // 4} dims", b, peer_pca(Cn, Qn, vt, b // 4, catalogue_ids, truth))
            if b <= d:
                add("PCA + int8", "", f"{b} dims", b, peer_int8(faiss, Cn, Qn, vt, b, catalogue_ids, truth))
            if 8 * b <= d:
                add("binary", "", f"{8 * b} bits", b, peer_binary(faiss, Cn, Qn, vt, 8 * b, catalogue_ids, truth))
            if b <= d and d % b == 0 and b in pq_bytes:
                add("faiss PQ", "", f"M={b}", b, peer_pq(faiss, Cn, Qn, b, False, catalogue_ids, truth))
            if b <= d and d % b == 0 and b in opq_bytes:
                add("faiss OPQ", "", f"M={b}", b, peer_pq(faiss, Cn, Qn, b, True, catalogue_ids, truth))

    finished = _dt.datetime.now()
    os.makedirs(a.out_dir, exist_ok=True)
    stem = os.path.join(a.out_dir, f"quality-{started:%Y-%m-%d}{a.tag}" + ("-quick" if a.quick else ""))
    with open(stem + ".csv", "w", newline="") as f:
        fields = ["method", "mode", "param", "bytes", "compression", "recall", "dead", "steps", "epochs",
                  "validation_loss", "train_seconds"]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    header = (f"Machine: {machine()}. Run {started:%Y-%m-%d %H:%M} to {finished:%H:%M}, "
              f"compressae {compressae.__version__}, numpy {np.__version__}.")
    title = (f"WordNet MiniLM-384 ({len(C):,} items, {len(Q)} queries), h = {H}; "
             f"Recall@{N_TOP} vs exact cosine")
    if not a.quick:
        plot(rows, stem + ".png", title)
    with open(stem + ".md", "w") as f:
        f.write(f"# Quality benchmark\n\n{header}\n\nCommand: `python3 benchmarks/quality.py "
                + " ".join(sys.argv[1:]) + f"`\n\n{title}.\n\n")
        f.write("| method | mode | size | bytes/vector | compression | Recall@100 | dead latents | steps | train s |\n")
        f.write("|---|---|---|---|---|---|---|---|---|\n")
        for r in sorted(rows, key=lambda r: (-r["compression"], r["method"], r["mode"])):
            f.write(f"| {r['method']} | {r['mode']} | {r['param']} | {r['bytes']} | {r['compression']:g}x | "
                    f"{r['recall']:.3f} | {r.get('dead', '')} | {r.get('steps', '')} | {r.get('train_seconds', '')} |\n")
        if ablation:
            f.write("\n## Ablation at k = 32: the default recipe with one change undone\n\n")
            f.write("| recipe | sparse | reconstructed | asymmetric | dead latents | steps | train s |\n")
            f.write("|---|---|---|---|---|---|---|\n")
            for r in ablation:
                f.write(f"| {r['change']} | {r['sparse']:.3f} | {r['reconstructed']:.3f} | {r['asymmetric']:.3f} | "
                        f"{r['dead']} | {r['steps']} | {r['train_seconds']} |\n")
    print(f"wrote {stem}.csv, .md" + ("" if a.quick else ", .png"))


# Each entry: the default recipe with one change undone, at k = 32.
ABLATIONS = [
    ("default recipe", {}),
    ("without the similarity term", {"fit": {"sparse_similarity_weight": 0.0}}),
    ("reference initialisation (kaiming encoder)", {"model": {"init": "reference"}}),
]


if __name__ == "__main__":
    main()
