"""Shared pieces of the engine and scale-out tests (imported by the test modules)."""

import importlib
import os

import numpy as np
import pytest

import compressae
from helpers import fit_ref

H, K = 1024, 16
N_ITEMS, N_QUERIES, TOP = 4000, 60, 10

#: Set by scripts/test-engines (the CI stage): a missing engine or framework
#: then fails the test instead of skipping it.
REQUIRED = os.environ.get("COMPRESSAE_ENGINE_TESTS") == "required"


def need(module: str, what: str):
    """Import ``module`` or skip (fail when the engine tests are required)."""
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        reason = f"{what} not available ({module}: {type(exc).__name__}: {exc})"
        if REQUIRED:
            pytest.fail(reason + "; COMPRESSAE_ENGINE_TESTS=required")
        pytest.skip(reason)


def unavailable(reason: str):
    """Skip (or fail when required) because an installed engine cannot run here."""
    if REQUIRED:
        pytest.fail(reason + "; COMPRESSAE_ENGINE_TESTS=required")
    pytest.skip(reason)


def trained_model():
    """(model, items [4000, 384], queries [60, 384]) from the shipped data."""
    X = compressae.datasets.wordnet10k()
    items, queries = X[:N_ITEMS], X[N_ITEMS:N_ITEMS + N_QUERIES]
    model = compressae.CompresSAE(384, latent_dim=H, k=K, seed=0)
    fit_ref(model, items, batch_size=1000, epochs=3, seed=0)
    return model, items, queries


def unit_rows(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def top_ids(scores, n=TOP):
    """Ids of the n best scores per row (ties: lower id first)."""
    order = np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores),
                       axis=1)
    return order[:, :n]


def agreement(found, expected, true_scores, tol):
    """Compare an engine's top-n ids with the expected ids, both [q, n].

    Returns (identical lists, equal sets) counts over the queries and
    asserts that every difference is a tie: an id of one list missing from
    the other has an exact score within ``tol`` of the other list's n-th
    score (the engine computes in float32, in its own order).
    """
    found, expected = np.asarray(found), np.asarray(expected)
    assert found.shape == expected.shape, (found.shape, expected.shape)
    identical = int((found == expected).all(axis=1).sum())
    same_set = 0
    for q in range(found.shape[0]):
        a, b = set(found[q].tolist()), set(expected[q].tolist())
        if a == b:
            same_set += 1
            continue
        cut = true_scores[q, expected[q]].min()
        for item in a ^ b:
            assert abs(true_scores[q, item] - cut) <= tol, (
                f"query {q}: item {item} (score {true_scores[q, item]:.7f}) differs "
                f"from the expected top-{found.shape[1]} (cut-off {cut:.7f}) by more than {tol}")
    return identical, same_set


def report(name, identical, same_set, total):
    print(f"\n  {name}: top-{TOP} identical for {identical}/{total} queries, "
          f"same set for {same_set}/{total}")
