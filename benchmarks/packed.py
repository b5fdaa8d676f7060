#!/usr/bin/env python3
"""Packed codes: Recall@100 at exact bytes per vector, and search speed of
the packed index storages next to the compact one, in one run.

On the shared WordNet MiniLM data (``--data``; loaded as benchmarks/quality.py
loads it: 116,659 catalogue rows, 1,000 held-out queries, exact top-100),
for each k in ``--ks`` (default 16, 32, 64) at h = 4096, with a model of the
library's default recipe (``CompresSAE(384, 4096, k, seed=0).fit(C, seed=1)``,
as quality.py trains it; loaded from ``--models DIR/default-k<k>.safetensors``
when there, else trained and saved there):

- items are encoded once (sparse mode: the encoder's values; reconstructed
  mode: values refitted by least squares, as a reconstructed index stores
  them), then added to one index per storage: ``standard`` (float32),
  ``compact`` (float16), ``packed8`` and ``packed4`` (8- / 4-bit levels of
  ``SparseCodes.pack`` with a scale per item: refit first, then quantise);
- modes: ``sparse`` (k-code queries), ``sparse+4k-query`` (dense queries
  the index encodes with 4k nonzeros), ``asymmetric`` (dense queries against
  the reconstructed index);
- reported per row: Recall@100 against the exact top-100; the overlap of
  its top-100 with the standard storage's top-100 (the unpacked codes'
  ranking); bytes per vector of the packed codes (``PackedCodes``: a float32
  scale + Elias-Fano indices + levels; 8k for the plain codes, the paper's
  accounting) and bytes per item the index holds (``nbytes / count``); the
  median search time of ``--rounds`` rounds of the 1,000 queries (n = 100),
  the storages timed in turn within each round.

``--pq`` adds faiss PQ (8-bit codes, M bytes) on the L2-normalised vectors.

Run:  python3 benchmarks/packed.py --models /tmp/models   # about 30 min on 2 busy cores with models at hand
Writes benchmarks/results/packed-<date>.md (and .csv).
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import os
import sys
import time

import numpy as np

import compressae

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import quality  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORAGES = ("standard", "compact", "packed8", "packed4")


def model_for(k, C, models_dir, name="default-k{k}.safetensors"):
    path = os.path.join(models_dir, name.format(k=k)) if models_dir else None
    if path and os.path.exists(path):
        return compressae.CompresSAE.load(path), "loaded"
    model = compressae.CompresSAE(C.shape[1], quality.H, k, seed=0)
    start = time.perf_counter()
    model.fit(C, seed=1)
    if path:
        os.makedirs(models_dir, exist_ok=True)
        model.save(path)
    return model, f"trained in {time.perf_counter() - start:.0f} s"


def overlap(a, b):
    return float(np.mean([len(set(x) & set(y)) / len(x) for x, y in zip(a, b)]))


def run_k(k, C, Q, catalogue_ids, truth, a, rows):
    model, how = model_for(k, C, a.models, a.model_name)
    print(f"k = {k}: model {how}", flush=True)
    modes = a.modes.split(",")

    def encoded(name, refit):
        # Cached with --codes-cache: the timed part is the search, not the encoding.
        path = os.path.join(a.codes_cache, f"{a.model_name.format(k=k)}-{name}.npz") if a.codes_cache else None
        if path and os.path.exists(path):
            z = np.load(path)
            return compressae.SparseCodes(z["indices"], z["values"], int(z["dim"]))
        codes = model.encode(C, refit=refit)
        if path:
            os.makedirs(a.codes_cache, exist_ok=True)
            np.savez(path, indices=codes.indices, values=codes.values, dim=codes.dim)
        return codes

    codes = {"sparse": encoded("sparse", False) if any(m.startswith("sparse") for m in modes) else None,
             "reconstructed": encoded("refit", True) if "asymmetric" in modes else None}
    query_codes = model.encode(Q)
    packed_bytes = {8: compressae.packed.row_bytes(quality.H, k, 8), 4: compressae.packed.row_bytes(quality.H, k, 4)}
    searches = {"sparse": ("sparse", lambda index: index.search(query_codes, n=quality.N_TOP)),
                "sparse+4k-query": ("sparse", lambda index: index.search(Q, n=quality.N_TOP)),
                "asymmetric": ("reconstructed", lambda index: index.search(Q, n=quality.N_TOP))}
    for mode in ("sparse", "reconstructed"):
        if not any(searches[m][0] == mode for m in a.modes.split(",") if m in searches):
            continue
        indexes = {}
        for storage in STORAGES:
            index = compressae.SparseIndex(model, mode=mode, storage=storage)
            index.add(codes[mode])
            indexes[storage] = index
        for name, (index_mode, search) in searches.items():
            if index_mode != mode or name not in a.modes.split(","):
                continue
            times = {s: [] for s in STORAGES}
            ids = {}
            for s in STORAGES:  # warm-up (sparse mode builds its posting lists at the first search)
                ids[s] = search(indexes[s])[1]
            for _ in range(a.rounds):
                for s in STORAGES:
                    start = time.perf_counter()
                    search(indexes[s])
                    times[s].append(time.perf_counter() - start)
            for s in STORAGES:
                bits = {"packed8": 8, "packed4": 4}.get(s)
                row = dict(k=k, mode=name, storage=s,
                           bytes_per_vector=packed_bytes[bits] if bits else 8 * k,
                           index_bytes_per_item=round(indexes[s].nbytes / len(indexes[s]), 1),
                           recall=round(compressae.recall_at_n(catalogue_ids[ids[s]], truth), 4),
                           overlap_with_standard=round(overlap(ids[s], ids["standard"]), 4),
                           search_ms_median=round(1000 * float(np.median(times[s])), 1))
                rows.append(row)
                print(row, flush=True)
        for index in indexes.values():
            index.close()
    model.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(ROOT), "shared", "data"))
    ap.add_argument("--ks", default="16,32,64")
    ap.add_argument("--models", help="directory of trained models default-k<k>.safetensors (read, or written)")
    ap.add_argument("--model-name", default="default-k{k}.safetensors",
                    help="file name of the model for k in --models ({k} is replaced)")
    ap.add_argument("--modes", default="sparse,sparse+4k-query,asymmetric",
                    help="searches timed: sparse (k-code queries), sparse+4k-query (dense queries), asymmetric")
    ap.add_argument("--codes-cache", help="directory where the items' codes are kept between runs")
    ap.add_argument("--threads", type=int, default=0, help="search threads (0: the library's default)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pq", default="32,48,64,96,128", help="faiss PQ sizes in bytes ('' for none)")
    ap.add_argument("--tag", default="", help="suffix of the result files' names")
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "benchmarks", "results"))
    a = ap.parse_args()
    C, Q, catalogue_ids, truth = quality.load(a.data)
    if a.threads:
        compressae.set_num_threads(a.threads)
    rows = []
    for k in [int(x) for x in a.ks.split(",") if x]:
        run_k(k, C, Q, catalogue_ids, truth, a, rows)
    pq = []
    if a.pq:
        import faiss
        Cn, Qn = quality.normalize(C), quality.normalize(Q)
        for m in [int(x) for x in a.pq.split(",")]:
            pq.append((m, round(quality.peer_pq(faiss, Cn, Qn, m, False, catalogue_ids, truth), 4)))
            print("faiss PQ", pq[-1], flush=True)
    stamp = _dt.date.today().isoformat()
    os.makedirs(a.out_dir, exist_ok=True)
    base = os.path.join(a.out_dir, f"packed-{stamp}{a.tag}")
    with open(base + ".csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    load = os.getloadavg()
    with open(base + ".md", "w") as f:
        f.write(f"# Packed codes, {stamp}\n\n`python3 benchmarks/packed.py {' '.join(sys.argv[1:])}`\n\n")
        f.write(f"Machine: {quality.machine()}; load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}; "
                f"{compressae.get_num_threads()} threads; {a.rounds} rounds, medians; "
                f"library {compressae._ffi.library_path}; models {a.models}/{a.model_name}.\n\n")
        f.write("| k | mode | storage | bytes/vector | index bytes/item | Recall@100 | top-100 overlap with standard | search ms (1000 q) |\n")
        f.write("|---|---|---|---|---|---|---|---|\n")
        for r in rows:
            f.write(f"| {r['k']} | {r['mode']} | {r['storage']} | {r['bytes_per_vector']} | {r['index_bytes_per_item']} | "
                    f"{r['recall']:.3f} | {r['overlap_with_standard']:.3f} | {r['search_ms_median']} |\n")
        if pq:
            f.write("\n| faiss PQ bytes | Recall@100 |\n|---|---|\n")
            for m, r in pq:
                f.write(f"| {m} | {r:.3f} |\n")
    print("wrote", base + ".md")


if __name__ == "__main__":
    main()
