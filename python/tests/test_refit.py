"""Least-squares refit of code values: model.encode(refit=True), model.refit,
and the reconstructed index's dense add."""

import ctypes

import numpy as np
import pytest

import compressae
from compressae import InvalidArgumentError
from helpers import random_rows

D, H, K = 32, 256, 6


@pytest.fixture
def model():
    with compressae.CompresSAE(D, latent_dim=H, k=K, seed=7) as m:
        yield m


def ridge_least_squares(model, X, indices):
    """numpy float64 reference: argmin |x - z @ W[S]|^2 + ridge |z|^2 per row."""
    W = model.decoder_w.astype(np.float64)
    out = np.empty(indices.shape)
    for i, row in enumerate(indices):
        S = W[row]
        G = S @ S.T
        G += 1e-3 * np.trace(G) / len(row) * np.eye(len(row))
        out[i] = np.linalg.solve(G, S @ X[i].astype(np.float64))
    return out


def test_encode_refit_matches_least_squares(model, rng):
    X = random_rows(rng, 40, D)
    plain = model.encode(X)
    refitted = model.encode(X, refit=True)
    expected = ridge_least_squares(model, X, plain.indices)
    for i in range(len(X)):
        got = dict(zip(refitted.indices[i].tolist(), refitted.values[i].tolist()))
        want = dict(zip(plain.indices[i].tolist(), expected[i].tolist()))
        assert got.keys() == want.keys()
        scale = max(abs(v) for v in want.values())
        assert max(abs(got[j] - want[j]) for j in want) <= 1e-4 * scale
    # Ordered by decreasing |value|, like encode.
    assert np.all(np.diff(np.abs(refitted.values), axis=1) <= 0)
    # Least squares against X itself: decode approximates X, not its direction only.
    residual_plain = np.linalg.norm(model.decode(plain) / np.linalg.norm(model.decode(plain), axis=1, keepdims=True)
                                    - X / np.linalg.norm(X, axis=1, keepdims=True), axis=1)
    recon = model.decode(refitted)
    residual_refit = np.linalg.norm(recon / np.linalg.norm(recon, axis=1, keepdims=True)
                                    - X / np.linalg.norm(X, axis=1, keepdims=True), axis=1)
    assert np.all(residual_refit <= residual_plain + 1e-5)


def test_refit_method_keeps_the_support_and_input(model, rng):
    X = random_rows(rng, 10, D)
    plain = model.encode(X)
    before = plain.indices.copy(), plain.values.copy()
    refitted = model.refit(X, plain)
    np.testing.assert_array_equal(plain.indices, before[0])
    np.testing.assert_array_equal(plain.values, before[1])
    again = model.encode(X, refit=True)
    np.testing.assert_array_equal(refitted.indices, again.indices)
    np.testing.assert_array_equal(refitted.values, again.values)
    # Any support works, e.g. the first K latents for every row.
    support = np.tile(np.arange(K, dtype=np.int32), (10, 1))
    custom = model.refit(X, (support, np.zeros((10, K), np.float32)))
    expected = ridge_least_squares(model, X, support)
    dense = custom.toarray()[:, :K]
    np.testing.assert_allclose(dense, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())


@pytest.mark.parametrize("indices, message", [
    ([[1, 1, 2, 3, 4, 5]], "appears twice"),
    ([[1, 2, 3, 4, 5, H]], "outside"),
    ([[-1, 2, 3, 4, 5, 6]], "outside"),
])
def test_refit_bad_supports(model, rng, indices, message):
    X = random_rows(rng, 1, D)
    with pytest.raises(InvalidArgumentError, match=message):
        model.refit(X, (np.array(indices), np.zeros((1, K), np.float32)))


def test_refit_row_count_mismatch_and_bad_rows(model, rng):
    X = random_rows(rng, 3, D)
    codes = model.encode(X)
    with pytest.raises(InvalidArgumentError, match="rows"):
        model.refit(X[:2], codes)
    bad = X.copy()
    bad[1, 4] = np.nan
    with pytest.raises(InvalidArgumentError, match="row 1"):
        model.refit(bad, codes)
    with pytest.raises(InvalidArgumentError, match="row 1"):
        model.encode(bad, refit=True)


@pytest.mark.parametrize("mode, refit", [("reconstructed", True), ("sparse", False)])
def test_index_dense_add_encodes_as_the_mode_prefers(model, rng, mode, refit):
    X = random_rows(rng, 50, D)
    Q = random_rows(rng, 5, D)
    from_dense = compressae.SparseIndex(model, mode=mode)
    from_dense.add(X)
    from_codes = compressae.SparseIndex(model, mode=mode)
    from_codes.add(model.encode(X, refit=refit))
    s1, i1 = from_dense.search(Q, n=7)
    s2, i2 = from_codes.search(Q, n=7)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(s1, s2)


def test_raw_refit_refuses_null_and_bad_sizes(model, rng):
    import ctypes
    from compressae import _ffi
    X = random_rows(rng, 2, D)
    codes = model.encode(X)
    idx, val = codes.indices.copy(), codes.values.copy()
    handle = model._handle._pointer
    params = _ffi.csae_encode_default_params()
    params.k = K
    bad_k = _ffi.csae_encode_default_params()
    bad_k.k = -1
    p, cap = ctypes.byref(params), idx.size
    cases = [
        (handle, None, 2, D, p, _ffi.i32_ptr(idx), _ffi.f32_ptr(val), cap, None),
        (handle, _ffi.f32_ptr(X), 2, D, p, None, _ffi.f32_ptr(val), cap, None),
        (handle, _ffi.f32_ptr(X), 2, D + 1, p, _ffi.i32_ptr(idx), _ffi.f32_ptr(val), cap, None),
        (handle, _ffi.f32_ptr(X), 2, D, ctypes.byref(bad_k), _ffi.i32_ptr(idx), _ffi.f32_ptr(val), cap, None),
        (handle, _ffi.f32_ptr(X), 2, D, p, _ffi.i32_ptr(idx), _ffi.f32_ptr(val), cap - 1, None),
        (None, _ffi.f32_ptr(X), 2, D, p, _ffi.i32_ptr(idx), _ffi.f32_ptr(val), cap, None),
    ]
    for args in cases:
        assert _ffi.csae_model_refit(*args) != _ffi.CSAE_OK
        assert _ffi.last_error()
    np.testing.assert_array_equal(idx, codes.indices)


def test_refit_keeps_the_values_of_rows_it_cannot_solve(rng):
    # Decoder rows of norm 1e20: the Gram matrix overflows float32, the
    # factorisation fails, and every row keeps the values it came with.
    E = rng.standard_normal((D, H)).astype(np.float32)
    W = rng.standard_normal((H, D)).astype(np.float32)
    W *= 1e20 / np.linalg.norm(W, axis=1, keepdims=True)
    with compressae.CompresSAE.from_weights(E, np.zeros(H, np.float32), W, K) as m:
        X = random_rows(rng, 5, D)
        codes = m.encode(X)
        for _ in range(3):
            refitted = m.refit(X, codes)
            np.testing.assert_array_equal(refitted.indices, codes.indices)
            np.testing.assert_array_equal(refitted.values, codes.values)


def test_query_k_is_for_dense_queries_only(model, rng):
    X = random_rows(rng, 30, D)
    index = compressae.SparseIndex(model, mode="sparse")
    index.add(X)
    with pytest.raises(InvalidArgumentError, match="query_k applies to dense queries"):
        index.search(model.encode(X[:2]), n=3, query_k=2 * K)
