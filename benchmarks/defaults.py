#!/usr/bin/env python3
"""Do the training defaults hold beyond the shared set?

For each data set (``--sets``: a name of benchmarks/make_datasets.py --
``digits``, ``items``, ``mixture`` --, ``wordnet`` for the shared set, or
the path of an ``.npy`` matrix) and each k (``--ks``), trains
``CompresSAE(d, h, k)`` with each recipe (``--recipes``):

- ``default``: ``fit(catalogue)`` with the library's defaults;
- ``long``: a long tuned run, ``--long-epochs`` (default 400) epochs of
  batch 4096 with a cosine decay from 1e-2 (the defaults otherwise, no early
  stopping);
- ``NAME=JSON``: the defaults with the ``fit`` keyword arguments in JSON,
  e.g. ``'nosim={"sparse_similarity_weight": 0}'``;

and reports per run: the dead latents at the end (the fraction of latents
in no catalogue row's k-code; and ``dead_latents_[-1]``, the library's
count over the last window of training rows), the steps run, the fit time,
and Recall@100 in sparse mode (k-code queries against k-code items) and in
asymmetric mode (dense queries against decoded items, encoder values).

Queries: the shared set's fixed split and truth; for the others a seeded
random choice of ``min(1000, rows / 10)`` rows, the rest being the
catalogue, and truth = each query's exact cosine top-100 in the catalogue
(computed here).

Run:  python3 benchmarks/defaults.py --sets digits items mixture --ks 8 16 32 64
      python3 benchmarks/defaults.py --sets wordnet --ks 32 --recipes default
Writes ``defaults-<date>-<tag>.csv`` and ``.md`` to ``--out-dir``
(default benchmarks/results). Needs numpy, scikit-learn (digits) and the
compressae package.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import json
import os
import platform
import sys
import time

import numpy as np

import compressae

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import make_datasets  # noqa: E402

N_TOP = 100


def normalize(a):
    return a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-30)


def exact_truth(C, Q, n=N_TOP):
    """Each query's exact cosine top-n among the catalogue rows."""
    Cn, Qn = normalize(C), normalize(Q)
    truth = np.empty((len(Q), n), np.int64)
    for s in range(0, len(Q), 256):
        sims = Qn[s:s + 256] @ Cn.T
        top = np.argpartition(-sims, n - 1, axis=1)[:, :n]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        truth[s:s + 256] = np.take_along_axis(top, order, axis=1)
    return truth


def load_set(name, data_dir, seed, cache=None):
    """(catalogue, queries, catalogue ids, truth in catalogue ids or global ids)."""
    if name == "wordnet":
        X = np.load(os.path.join(data_dir, "wordnet_minilm384_f16.npy")).astype(np.float32)
        queries = np.load(os.path.join(data_dir, "wordnet_split_queries.npy"))
        truth = np.load(os.path.join(data_dir, "wordnet_gt_top100.npy"))
        mask = np.ones(len(X), bool)
        mask[queries] = False
        ids = np.nonzero(mask)[0]
        return X[ids], X[queries], ids, truth
    if name in make_datasets.GENERATORS:
        cached = os.path.join(cache, name + ".npy") if cache else None
        if cached and os.path.exists(cached):
            X = np.load(cached)
        else:
            X = make_datasets.GENERATORS[name](seed=0)
            if cached:
                os.makedirs(cache, exist_ok=True)
                np.save(cached, X)
    else:
        X = np.load(name).astype(np.float32)
    X = X[np.linalg.norm(X, axis=1) > 0]
    rng = np.random.default_rng(seed)
    nq = min(1000, len(X) // 10)
    perm = rng.permutation(len(X))
    queries, catalogue = np.sort(perm[:nq]), np.sort(perm[nq:])
    C, Q = X[catalogue], X[queries]
    truth = exact_truth(C, Q)
    return C, Q, np.arange(len(C)), truth


def recipe_fit(recipe, a):
    if recipe == "default":
        return {}
    if recipe == "long":
        return dict(epochs=a.long_epochs, batch_size=4096, learning_rate_decay="cosine", patience=0,
                    validation_fraction=0.0)
    name, _, spec = recipe.partition("=")
    return json.loads(spec)


def run_one(C, Q, ids, truth, k, recipe, a):
    fit = recipe_fit(recipe, a)
    model = compressae.CompresSAE(C.shape[1], a.h, k, seed=a.seed)
    start = time.perf_counter()
    model.fit(C, seed=a.seed + 1, num_threads=a.threads, **fit)
    seconds = time.perf_counter() - start
    codes_c, codes_q = model.encode(C), model.encode(Q)
    used = np.zeros(a.h, bool)
    used[np.asarray(codes_c.indices).ravel()] = True
    index = compressae.SparseIndex(model, mode="sparse")
    index.add(codes_c)
    _, found = index.search(codes_q, n=N_TOP)
    sparse = compressae.recall_at_n(ids[found], truth)
    index = compressae.SparseIndex(model, mode="reconstructed")
    index.add(codes_c)
    _, found = index.search(Q, n=N_TOP)
    asym = compressae.recall_at_n(ids[found], truth)
    dead_window = float(model.dead_latents_[-1]) if len(model.dead_latents_) else float("nan")
    return dict(dead=1 - used.mean(), dead_window=dead_window, steps=len(model.history_),
                seconds=seconds, sparse=sparse, asymmetric=asym)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", nargs="+", default=["digits", "items", "mixture"])
    ap.add_argument("--ks", nargs="+", type=int, default=[8, 16, 32, 64])
    ap.add_argument("--recipes", nargs="+", default=["default", "long"])
    ap.add_argument("--h", type=int, default=4096)
    ap.add_argument("--long-epochs", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"),
                    help="directory of the shared WordNet set")
    ap.add_argument("--cache", default=None, help="directory keeping the generated sets between runs")
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--tag", default="")
    a = ap.parse_args()
    if not os.path.isdir(a.data) and os.path.isdir("/work/shared/data"):
        a.data = "/work/shared/data"

    date = _dt.date.today().isoformat()
    stem = os.path.join(a.out_dir, f"defaults-{date}" + (f"-{a.tag}" if a.tag else ""))
    os.makedirs(a.out_dir, exist_ok=True)
    rows = []
    fields = ["set", "rows", "dim", "k", "recipe", "dead", "dead_window", "steps", "seconds",
              "sparse", "asymmetric", "load"]
    with open(stem + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for name in a.sets:
            C, Q, ids, truth = load_set(name, a.data, a.seed, a.cache)
            label = os.path.basename(name)
            for k in a.ks:
                for recipe in a.recipes:
                    r = run_one(C, Q, ids, truth, k, recipe, a)
                    r.update(set=label, rows=len(C), dim=C.shape[1], k=k, recipe=recipe.partition("=")[0],
                             load=os.getloadavg()[0])
                    rows.append(r)
                    w.writerow({f_: (round(r[f_], 4) if isinstance(r[f_], float) else r[f_]) for f_ in fields})
                    f.flush()
                    print(f"{label:8s} n={len(C):6d} k={k:3d} {r['recipe']:10s} dead {r['dead']:.3f} "
                          f"(window {r['dead_window']:.3f}) steps {r['steps']:5d} {r['seconds']:7.1f}s "
                          f"sparse {r['sparse']:.3f} asym {r['asymmetric']:.3f} load {r['load']:.1f}",
                          flush=True)
    with open(stem + ".md", "w") as f:
        f.write(f"# Training defaults across data sets, {date}\n\n")
        f.write(f"Command: `python3 benchmarks/defaults.py {' '.join(sys.argv[1:])}`\n\n")
        f.write(f"Machine: {platform.platform()}, {os.cpu_count()} cores, compressae "
                f"{compressae.library_version()}, h = {a.h}. `load` = 1-minute load average after the run "
                "(other work shared the machine: times are indicative).\n\n")
        f.write("| set | rows | d | k | recipe | dead latents | dead (last window) | steps | fit s | "
                "sparse | asymmetric | load |\n|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
        for r in rows:
            f.write(f"| {r['set']} | {r['rows']} | {r['dim']} | {r['k']} | {r['recipe']} | {r['dead']:.1%} | "
                    f"{r['dead_window']:.1%} | {r['steps']} | {r['seconds']:.1f} | {r['sparse']:.3f} | "
                    f"{r['asymmetric']:.3f} | {r['load']:.1f} |\n")
    print("wrote", stem + ".md")


if __name__ == "__main__":
    main()
