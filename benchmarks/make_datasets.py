#!/usr/bin/env python3
"""Data sets for benchmarks/defaults.py, besides the shared WordNet set.

Each generator returns a float32 matrix (rows = items); defaults.py splits
queries off it and computes the exact cosine top-100 of each query. All are
made offline and seeded, so a run can be repeated anywhere:

- ``digits``: scikit-learn's bundled handwritten digits, 1,797 x 64 (pixel
  intensities, centred on the mean image so cosine ranks shapes, not ink).
  Real, small, no network.
- ``items``: item factors of a synthetic ratings matrix, 1,682 x 64 (the
  size of the MovieLens-100k catalogue): 943 users x 1,682 items with
  ratings from a rank-20 model with popularity and user biases, about 6%
  observed, factorised by a truncated SVD of the observed (mean-centred)
  matrix; the items' right singular vectors scaled by the singular values
  are the embeddings.
- ``mixture``: an anisotropic Gaussian mixture in 256 dimensions with a
  power-law spectrum (the variance of principal direction i falls as
  i^-1.1, like word vectors'), 200 clusters of Zipf-distributed sizes, each
  with its own random rotation of a power-law covariance, 20,000 rows
  (a size that a 400-epoch run can afford on 2 cores).

Run:  python3 benchmarks/make_datasets.py --out DIR [--only NAME ...]
      writes DIR/NAME.npy per set; defaults.py also makes them in memory.
      ``--rows R`` (mixture only) draws R rows instead of 20,000, written to
      DIR/mixture-R.npy (e.g. ``--only mixture --rows 101000`` for
      retrieval.py's 100,000-item catalogue + 1,000 queries).
"""

from __future__ import annotations

import argparse
import os

import numpy as np


def digits(seed=0):
    from sklearn.datasets import load_digits
    X = load_digits().data.astype(np.float64)
    X -= X.mean(axis=0)
    return X.astype(np.float32)


def items(seed=0, users=943, n_items=1682, rank=20, dim=64, density=0.063):
    rng = np.random.default_rng(seed)
    u = rng.standard_normal((users, rank)) / np.sqrt(rank)
    v = rng.standard_normal((n_items, rank)) * (1.0 / np.arange(1, rank + 1) ** 0.5)
    popularity = rng.standard_normal(n_items) * 0.5
    user_bias = rng.standard_normal(users) * 0.3
    scores = u @ v.T * 3 + popularity[None, :] + user_bias[:, None]
    ratings = np.clip(np.rint(3.5 + scores), 1, 5)
    # Popular items are rated more often (Zipf-like exposure).
    exposure = 1.0 / np.arange(1, n_items + 1) ** 0.8
    exposure = exposure[rng.permutation(n_items)]
    p = density * exposure / exposure.mean()
    observed = rng.random((users, n_items)) < np.clip(p[None, :], 0, 1)
    observed[np.arange(users), rng.integers(0, n_items, users)] = True
    R = np.where(observed, ratings, 0.0)
    counts = observed.sum(axis=0)
    means = np.where(counts > 0, R.sum(axis=0) / np.maximum(counts, 1), 0)
    R = np.where(observed, R - means[None, :], 0.0)
    _, s, vt = np.linalg.svd(R, full_matrices=False)
    X = (vt[:dim].T * s[:dim]).astype(np.float32)
    # Items never rated have all-zero factors: give them a tiny random one.
    zero = np.linalg.norm(X, axis=1) == 0
    X[zero] = rng.standard_normal((int(zero.sum()), dim)).astype(np.float32) * 1e-3
    return X


def mixture(seed=0, rows=20_000, dim=256, clusters=200, alpha=1.1):
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.arange(1, dim + 1) ** alpha
    # Cluster centres spread along the global power-law spectrum.
    centres = rng.standard_normal((clusters, dim)) * np.sqrt(spectrum) * 2.0
    sizes = 1.0 / np.arange(1, clusters + 1) ** 0.9
    assign = rng.choice(clusters, size=rows, p=sizes / sizes.sum())
    X = np.empty((rows, dim), np.float32)
    for c in range(clusters):
        members = np.nonzero(assign == c)[0]
        if len(members) == 0:
            continue
        q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
        local = rng.standard_normal((len(members), dim)) * np.sqrt(spectrum) @ q.T
        X[members] = centres[c] + local
    return X


GENERATORS = {"digits": digits, "items": items, "mixture": mixture}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", default=list(GENERATORS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rows", type=int, default=None, help="rows of the mixture set (default 20,000)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    for name in a.only:
        if a.rows is not None and name == "mixture":
            X = mixture(seed=a.seed, rows=a.rows)
            name = f"mixture-{a.rows}"
        else:
            X = GENERATORS[name](seed=a.seed)
        np.save(os.path.join(a.out, name + ".npy"), X)
        print(name, X.shape)


if __name__ == "__main__":
    main()
