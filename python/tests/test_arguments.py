"""Argument classes at the Python boundary: paths (NUL bytes, bytes, PathLike),
integers beyond int64 (which ctypes would wrap silently), bools and floats
for counts, NumPy integers, huge sizes, 0 rows, layouts, read-only arrays,
and memory errors."""

import ctypes
import os
import pathlib
import tracemalloc

import numpy as np
import pytest

import compressae
from compressae import _ffi
from compressae.errors import error_for_status
from helpers import random_rows

D, H, K = 16, 128, 4


@pytest.fixture
def model():
    with compressae.CompresSAE(D, latent_dim=H, k=K, seed=1) as m:
        yield m


@pytest.fixture
def x(rng):
    return random_rows(rng, 40, D)


@pytest.fixture
def index(model, x):
    with compressae.SparseIndex(model) as ix:
        ix.add(x)
        yield ix


# ----------------------------------------------------------------- paths

def _nul_paths(tmp_path, name):
    good = tmp_path / name
    return good, [str(good) + "\0.evil", os.fsencode(str(good)) + b"\0.evil",
                  str(tmp_path) + "/\0" + name]


def test_nul_byte_in_model_path_is_refused(model, tmp_path):
    good, bad_paths = _nul_paths(tmp_path, "model.safetensors")
    for bad in bad_paths:
        with pytest.raises(compressae.InvalidArgumentError, match="NUL") as info:
            model.save(bad)
        assert isinstance(info.value, ValueError)
        # The truncated name must not have been written instead.
        assert not good.exists() and list(tmp_path.iterdir()) == []
    model.save(good)
    for bad in bad_paths:
        with pytest.raises(ValueError, match="NUL"):
            compressae.CompresSAE.load(bad)


def test_nul_byte_in_index_path_is_refused(model, index, tmp_path):
    good, bad_paths = _nul_paths(tmp_path, "index.safetensors")
    for bad in bad_paths:
        with pytest.raises(compressae.InvalidArgumentError, match="NUL"):
            index.save(bad)
        assert list(tmp_path.iterdir()) == []
    index.save(good)
    for bad in bad_paths:
        with pytest.raises(ValueError, match="NUL"):
            compressae.SparseIndex.load(bad, model)


class _PathLike:
    def __init__(self, path):
        self._path = path

    def __fspath__(self):
        return self._path


def test_path_types(model, index, x, tmp_path):
    expected = model.encode(x)
    for i, make in enumerate([str, pathlib.Path, os.fsencode, lambda p: _PathLike(str(p)),
                              lambda p: _PathLike(os.fsencode(str(p)))]):
        mpath, ipath = make(tmp_path / f"m{i}.safetensors"), make(tmp_path / f"i{i}.safetensors")
        model.save(mpath)
        index.save(ipath)
        loaded = compressae.CompresSAE.load(mpath)
        np.testing.assert_array_equal(loaded.encode(x).indices, expected.indices)
        assert len(compressae.SparseIndex.load(ipath, loaded)) == len(x)
    for bad in (3, None, ["a"]):
        with pytest.raises(TypeError):
            model.save(bad)
        with pytest.raises(TypeError):
            compressae.CompresSAE.load(bad)
    with pytest.raises(compressae.InvalidArgumentError):
        model.save("")
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.SparseIndex.load(b"", model)


# ------------------------------------------------------------- integers

BEYOND = [2**63, 2**64 + 8, 10**30]


@pytest.mark.parametrize("big", BEYOND)
def test_integers_beyond_int64_are_refused_not_wrapped(big, x):
    # ctypes would pass 2**64 + 8 as 8: a model of the wrong shape, silently.
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE(big, latent_dim=H, k=K)
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE(D, latent_dim=big, k=K)
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE(D, latent_dim=H, k=big)
    with compressae.CompresSAE(D, latent_dim=H, k=K) as m:
        for setting in ("batch_size", "epochs", "warmup_steps", "patience",
                        "dead_latent_window", "plateau_reductions", "similarity_rows", "validation_steps",
                        "dead_latent_aux_k"):
            with pytest.raises(compressae.InvalidArgumentError, match=setting):
                m.fit(x, **{setting: big})
        assert m.history_.shape == (0,)
        with pytest.raises(compressae.InvalidArgumentError):
            m.encode(x, k=big)
        with pytest.raises(compressae.InvalidArgumentError):
            m.encode(x, batch_size=big)
        with compressae.SparseIndex(m) as ix:
            ix.add(x)
            with pytest.raises(compressae.InvalidArgumentError):
                ix.search(x, n=big)
            with pytest.raises(compressae.InvalidArgumentError):
                ix.search(x, n=5, query_k=big)
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.SparseCodes(np.zeros((1, 1), np.int32), np.zeros((1, 1), np.float32), big)


@pytest.mark.parametrize("bad", [True, False, 2.0, np.float64(3.0), "4", np.True_])
def test_counts_refuse_bools_floats_and_strings(model, index, x, bad):
    with pytest.raises(TypeError):
        model.encode(x, k=bad)
    with pytest.raises(TypeError):
        index.search(x, n=bad)
    with pytest.raises(TypeError):
        index.search(x, n=3, query_k=bad)
    with pytest.raises(TypeError):
        model.fit(x, epochs=bad)
    with pytest.raises(TypeError):
        model.k = bad
    assert model.k == K


@pytest.mark.parametrize("bad", [0, -1, -(2**70)])
def test_counts_refuse_zero_and_negatives(model, index, x, bad):
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(x, k=bad)
    with pytest.raises(compressae.InvalidArgumentError):
        index.search(x, n=bad)
    with pytest.raises(compressae.InvalidArgumentError):
        model.fit(x, batch_size=bad)


@pytest.mark.parametrize("np_int", [np.int8, np.int32, np.int64, np.uint16, np.uint64])
def test_numpy_integers_are_accepted(model, index, x, np_int):
    codes = model.encode(x, k=np_int(3))
    assert codes.k == 3 and type(codes.k) is int
    scores, ids = index.search(x[:2], n=np_int(5), query_k=np_int(8))
    assert ids.shape == (2, 5)
    model.k = np_int(5)
    assert model.k == 5 and type(model.k) is int
    compressae.set_num_threads(np_int(1))
    compressae.set_num_threads(0)


def test_nothing_in_python_is_sized_by_epochs(model, x, monkeypatch):
    # fit(epochs=10**9) is a natural "until early stopping says so". The
    # library's side is tested in Swift; here: no Python allocation, and the
    # progress display copes with a total of 10**9 x steps.
    seen = {}

    def fake_train(handle, data, n, d, params_ref):
        params = ctypes.cast(params_ref, ctypes.POINTER(_ffi.csae_train_params)).contents
        seen["epochs"] = params.epochs
        for step in range(1, 4):
            params.progress(params.user_data, step, params.epochs * 10, 0.5)
        return _ffi.CSAE_OK

    monkeypatch.setattr(_ffi, "csae_model_train", fake_train)
    tracemalloc.start()
    try:
        model.fit(x, epochs=10**9, progress=True)
        model.fit(x, epochs=2**63 - 1, progress=lambda s, t, l: None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen["epochs"] == 2**63 - 1
    assert peak < 1 << 20, peak


# ----------------------------------------------------------------- 0 rows

def test_zero_rows_everywhere(model, index, x):
    empty = np.zeros((0, D), np.float32)
    codes = model.encode(empty)
    assert codes.indices.shape == (0, K)
    out = (np.zeros((0, K), np.int32), np.zeros((0, K), np.float32))
    assert len(model.encode(empty, out=out, progress=True)) == 0
    assert model.encode(empty, refit=True).values.shape == (0, K)
    assert model.decode(codes).shape == (0, D)
    assert model.refit(empty, codes).indices.shape == (0, K)
    assert model.preactivations(empty).shape == (0, H)
    n = len(index)
    index.add(empty)
    index.add(codes)
    assert len(index) == n
    scores, ids = index.search(empty, n=7)
    assert scores.shape == ids.shape == (0, 7)
    scores, ids = index.search(codes, n=7)
    assert scores.shape == (0, 7)
    with pytest.raises(compressae.InvalidArgumentError):
        model.fit(empty)
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(np.zeros((0, D + 1)))
    with compressae.SparseIndex(model) as fresh:
        scores, ids = fresh.search(empty, n=3)
        assert scores.shape == ids.shape == (0, 0)


# ---------------------------------------------------------------- layouts

def test_codes_selected_with_a_step_are_read_as_selected(model, index, x):
    # codes[::2] is a view with gaps; the library must get the selected rows,
    # not the first half of the rows.
    codes = model.encode(x)
    for view in (codes[::2], codes[::-1], codes[1::3]):
        dense = compressae.SparseCodes(view.indices.copy(), view.values.copy(), H)
        np.testing.assert_array_equal(model.decode(view), model.decode(dense))
        np.testing.assert_array_equal(index.search(view, n=5)[1], index.search(dense, n=5)[1])
        np.testing.assert_array_equal(model.refit(x[: len(view)], view).values,
                                      model.refit(x[: len(view)], dense).values)
    with compressae.SparseIndex(model) as a, compressae.SparseIndex(model) as b:
        a.add(codes[::2])
        b.add(compressae.SparseCodes(codes.indices[::2].copy(), codes.values[::2].copy(), H))
        np.testing.assert_array_equal(a.search(x, n=5)[1], b.search(x, n=5)[1])


def test_read_only_inputs(model, x):
    ro = x.copy()
    ro.flags.writeable = False
    same = model.encode(x)
    np.testing.assert_array_equal(model.encode(ro).indices, same.indices)
    broadcast = np.broadcast_to(x[0], (5, D))  # read-only, zero stride
    np.testing.assert_array_equal(model.encode(broadcast).indices,
                                  np.repeat(same.indices[:1], 5, axis=0))
    codes = model.encode(x)
    codes.indices.flags.writeable = False
    codes.values.flags.writeable = False
    model.decode(codes)
    refitted = model.refit(ro, codes)  # refit writes into its own copy
    assert refitted.values.flags.writeable
    with compressae.SparseIndex(model) as ix:
        ix.add(ro)
        ix.add(codes)
        ix.search(ro, n=3)
    with compressae.CompresSAE(D, latent_dim=H, k=K) as m:
        m.fit(np.asfortranarray(ro), epochs=1, batch_size=16, validation_fraction=0.0,
              patience=0, learning_rate_decay="constant")


# ------------------------------------------------------------------ memory

def test_out_of_memory_mapping():
    err = error_for_status(_ffi.CSAE_ERR_OUT_OF_MEMORY, "cannot allocate")
    assert isinstance(err, compressae.OutOfMemoryError) and isinstance(err, MemoryError)
    assert err.status == _ffi.CSAE_ERR_OUT_OF_MEMORY


def test_python_side_allocations_raise_out_of_memory_error(model, x):
    # 2**40 rows that take no memory as input; their codes cannot be allocated.
    huge = np.broadcast_to(x[0], (2**40, D))
    with pytest.raises(compressae.OutOfMemoryError) as info:
        model.encode(huge)
    assert info.value.status == 0 and "code" in str(info.value)
    with compressae.SparseIndex(model) as ix:
        ix.add(x)
        # n beyond the items allocates nothing for it; 2**40 queries cannot get results.
        assert ix.search(x[:4], n=2**62)[1].shape == (4, len(x))
        with pytest.raises(compressae.OutOfMemoryError, match="search"):
            ix.search(huge, n=5)


def test_memory_error_in_progress_is_not_confused(model, x):
    def progress(step, total, loss):
        raise MemoryError("from the callback")

    with pytest.raises(MemoryError, match="from the callback") as info:
        model.fit(x, epochs=1, batch_size=8, progress=progress)
    assert not isinstance(info.value, compressae.Error)


@pytest.mark.parametrize("setting, value", [
    ("learning_rate", 1e39), ("eps", 1e-300), ("sparse_similarity_weight", 1e39),
    ("similarity_temperature", 1e-300), ("dead_latent_aux_weight", 1e39)])
def test_float_settings_beyond_the_float_range_are_refused(model, x, setting, value):
    # Finite doubles that round to infinity (or to zero where zero is not
    # allowed) as the floats training computes with.
    before = model.encoder_w.copy()
    with pytest.raises(compressae.InvalidArgumentError, match=setting):
        model.fit(x, epochs=1, **{setting: value})
    np.testing.assert_array_equal(model.encoder_w, before)
