"""Shared test helpers (imported by the test modules and conftest)."""

import json
from pathlib import Path

import numpy as np

from st_numpy import read_safetensors

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "Tests" / "Fixtures" / "golden"
WORDNET = REPO / "python" / "compressae" / "data" / "wordnet10k_minilm384_f16.npy"


def load_golden(case):
    """(tensors, settings) of a golden case written by the PyTorch reference."""
    tensors, _ = read_safetensors(GOLDEN / f"{case}.safetensors")
    settings = json.loads((GOLDEN / f"{case}.json").read_text())
    return tensors, settings


def random_rows(rng, n, d):
    """Gaussian float32 rows with varied norms (never zero)."""
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x * rng.uniform(0.5, 3.0, size=(n, 1)).astype(np.float32)


def assert_close_to_max(actual, expected, rel, what=""):
    """|actual - expected| <= rel * max|expected|, elementwise."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual - expected))) if actual.size else 0.0
    assert err <= rel * scale, f"{what}: max abs error {err:.3g} > {rel:g} * {scale:.3g}"


def fit_ref(model, x, **settings):
    """``model.fit`` with the PyTorch reference's recipe
    (``compressae.REFERENCE_TRAINING``) for every setting not given: the
    tests of training mechanics count steps of one plain pass."""
    import compressae
    return model.fit(x, **{**compressae.REFERENCE_TRAINING, **settings})
