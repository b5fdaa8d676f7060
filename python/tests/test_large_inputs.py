"""Chunked encode/add/search: any input type converted a chunk at a time,
``out=`` (arrays and memmaps), progress, and results independent of the
chunking."""

import tracemalloc

import numpy as np
import pytest

import compressae
from compressae import _chunks
from helpers import random_rows

D, H, K = 64, 512, 8


@pytest.fixture(scope="module")
def model():
    with compressae.CompresSAE(D, latent_dim=H, k=K, seed=2) as m:
        yield m


@pytest.fixture(scope="module")
def x():
    return random_rows(np.random.default_rng(7), 3000, D)


# An optimised BLAS blocks its sums by the number of rows in the call, so
# the pre-activations of a row can differ in the last bit between chunkings
# (the built-in GEMM's cannot): the latents must agree, the values to float
# rounding.
VALUE_RTOL, VALUE_ATOL = 1e-5, 1e-6


def same_values(a, b):
    np.testing.assert_allclose(a, b, rtol=VALUE_RTOL, atol=VALUE_ATOL)


def same_codes(a, b):
    np.testing.assert_array_equal(a.indices, b.indices)
    same_values(a.values, b.values)


# ------------------------------------------------------------- chunking

@pytest.mark.parametrize("batch_size", [1, 7, 511, 512, 1000, 2999, 3000, 10**9])
@pytest.mark.parametrize("refit", [False, True])
def test_codes_do_not_depend_on_the_chunking(model, x, batch_size, refit):
    whole = model.encode(x, refit=refit, batch_size=len(x))
    same_codes(model.encode(x, refit=refit, batch_size=batch_size), whole)


def test_default_chunk_is_whole_encoder_blocks():
    # d = 384, h = 4096: one 512-row block per worker and chunk.
    assert _chunks.encode_chunk_rows(384, 4096, 32, False, 2) == 1024
    assert _chunks.encode_chunk_rows(384, 4096, 32, False, 1) % 512 == 0
    # Tiny models: capped, still whole blocks.
    assert _chunks.encode_chunk_rows(8, 16, 2, False, 3) == _chunks.MAX_CHUNK_ROWS * 3
    # Huge rows: at least one row.
    assert _chunks.encode_chunk_rows(10**6, 10**6, 32, True, 1) == 1


def test_bad_batch_size(model, x):
    for bad in (0, -1):
        with pytest.raises(compressae.InvalidArgumentError):
            model.encode(x, batch_size=bad)
    for bad in (2.0, True):
        with pytest.raises(TypeError):
            model.encode(x, batch_size=bad)


@pytest.mark.parametrize("batch_size", [1, 100, 2999])
def test_error_names_the_row_of_the_whole_input(model, x, batch_size):
    bad = x.copy()
    bad[2345, 3] = np.nan
    with pytest.raises(compressae.InvalidArgumentError, match=r"row 2345\b"):
        model.encode(bad, batch_size=batch_size)
    bad = x.copy()
    bad[1234] = 0
    with pytest.raises(compressae.InvalidArgumentError, match=r"row 1234\b"):
        model.encode(bad, batch_size=batch_size)


@pytest.mark.parametrize("mode", ["sparse", "reconstructed"])
def test_chunked_add_and_search_match_one_call(model, x, mode, monkeypatch):
    items, queries = x[:2500], x[2500:]
    one = compressae.SparseIndex(model, mode=mode)
    one.add(items)
    expected = one.search(queries, n=20)
    # Tiny chunks: every add and search call is split into many.
    monkeypatch.setattr(_chunks, "CHUNK_WORK", 1)
    monkeypatch.setattr(compressae.index, "CHUNK_WORK", 1)
    monkeypatch.setattr(compressae.index, "_ADD_CODES_CHUNK_ENTRIES", 3 * K)
    many = compressae.SparseIndex(model, mode=mode)
    many.add(items[:1000])
    many.add(model.encode(items[1000:], refit=(mode == "reconstructed")))
    assert len(many) == len(one)
    got = many.search(queries, n=20)
    np.testing.assert_array_equal(got[1], expected[1])
    same_values(got[0], expected[0])
    codes_query = model.encode(queries)
    np.testing.assert_array_equal(many.search(codes_query, n=20)[1],
                                  one.search(codes_query, n=20)[1])


def test_search_errors_name_the_query_row(model, x, monkeypatch):
    index = compressae.SparseIndex(model)
    index.add(x[:100])
    monkeypatch.setattr(compressae.index, "CHUNK_WORK", 1)
    queries = x[:50].copy()
    queries[37] = 0
    with pytest.raises(compressae.InvalidArgumentError, match=r"row 37\b"):
        index.search(queries, n=5)


def test_search_n_beyond_the_index_is_not_padded(model, x):
    index = compressae.SparseIndex(model)
    index.add(x[:10])
    scores, ids = index.search(x[:3], n=1000)
    assert scores.shape == ids.shape == (3, 10)
    np.testing.assert_array_equal(ids, index.search(x[:3], n=10)[1])
    # Huge n: nothing sized by it is allocated, here or in the library.
    tracemalloc.start()
    try:
        scores, ids = index.search(x[:3], n=2**61)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ids.shape == (3, 10) and peak < 1 << 20, peak


# ---------------------------------------------------------- input types

@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.uint8, np.int64])
def test_dtypes(model, x, dtype):
    data = (x * 20).astype(dtype) if np.dtype(dtype).kind in "iu" else x.astype(dtype)
    same_codes(model.encode(data, batch_size=700),
               model.encode(data.astype(np.float32), batch_size=700))


def test_float16_memmap_is_never_copied_whole(model, x, tmp_path):
    path = tmp_path / "x.f16"
    mm = np.memmap(path, dtype=np.float16, mode="w+", shape=x.shape)
    mm[:] = x
    mm.flush()
    del mm
    data = np.memmap(path, dtype=np.float16, mode="r", shape=x.shape)
    expected = model.encode(np.asarray(data).astype(np.float32))
    tracemalloc.start()
    try:
        codes = model.encode(data, batch_size=256)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    same_codes(codes, expected)
    full_copy = x.shape[0] * D * 4
    outputs = x.shape[0] * K * 8
    # The outputs plus about one chunk; a full float32 copy would add 768 kB.
    assert peak < outputs + full_copy // 4, peak


def test_memmap_out_and_readback(model, x, tmp_path):
    n = len(x)
    idx = np.lib.format.open_memmap(tmp_path / "i.npy", mode="w+", dtype=np.int32, shape=(n, K))
    val = np.lib.format.open_memmap(tmp_path / "v.npy", mode="w+", dtype=np.float32, shape=(n, K))
    codes = model.encode(x, out=(idx, val), batch_size=300)
    assert codes.indices is idx and codes.values is val
    del codes, idx, val
    expected = model.encode(x)
    np.testing.assert_array_equal(np.load(tmp_path / "i.npy"), expected.indices)
    same_values(np.load(tmp_path / "v.npy"), expected.values)


def test_out_arrays_and_sparse_codes(model, x):
    expected = model.encode(x, k=5)
    target = compressae.SparseCodes(np.zeros((len(x), 5), np.int32),
                                    np.zeros((len(x), 5), np.float32), H)
    assert model.encode(x, k=5, out=target, batch_size=999) is target
    same_codes(target, expected)
    # Non-contiguous destinations are written through a temporary.
    wide_i = np.zeros((len(x), 10), np.int32)
    wide_v = np.zeros((len(x), 10), np.float32)
    codes = model.encode(x, k=5, out=(wide_i[:, ::2], wide_v[:, ::2]), batch_size=128)
    same_codes(codes, expected)
    np.testing.assert_array_equal(wide_i[:, ::2], expected.indices)
    assert (wide_i[:, 1::2] == 0).all()
    fortran = (np.zeros((len(x), 5), np.int32, order="F"), np.zeros((len(x), 5), np.float32, order="F"))
    same_codes(model.encode(x, k=5, out=fortran), expected)


def test_out_is_checked(model, x):
    n = len(x)
    good_i, good_v = np.empty((n, K), np.int32), np.empty((n, K), np.float32)
    cases = [
        (np.empty((n, K), np.int64), good_v),
        (good_i, np.empty((n, K), np.float64)),
        (np.empty((n + 1, K), np.int32), good_v),
        (good_i, np.empty((n, K + 1), np.float32)),
    ]
    for out in cases:
        with pytest.raises(compressae.InvalidArgumentError):
            model.encode(x, out=out)
    readonly = good_v.copy()
    readonly.flags.writeable = False
    with pytest.raises(compressae.InvalidArgumentError, match="read-only"):
        model.encode(x, out=(good_i, readonly))
    with pytest.raises(compressae.InvalidArgumentError, match="overlap"):
        both = np.empty((n, 2 * K), np.int32)
        model.encode(x, out=(both[:, :K], both[:, K:].view(np.float32)[:, :K]))
    with pytest.raises(TypeError):
        model.encode(x, out=[good_i.tolist(), good_v])
    with pytest.raises(TypeError):
        model.encode(x, out="codes")
    wrong_dim = compressae.SparseCodes(np.zeros((n, K), np.int32), np.zeros((n, K), np.float32), H + 1)
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(x, out=wrong_dim)


def test_read_only_memmap_out_is_refused_not_a_crash(model, x, tmp_path):
    # Writing into a read-only mapping from C would be a segmentation fault.
    np.save(tmp_path / "i.npy", np.zeros((len(x), K), np.int32))
    np.save(tmp_path / "v.npy", np.zeros((len(x), K), np.float32))
    idx = np.load(tmp_path / "i.npy", mmap_mode="r")
    val = np.load(tmp_path / "v.npy", mmap_mode="r")
    with pytest.raises(compressae.InvalidArgumentError, match="read-only"):
        model.encode(x, out=(idx, val))


class _ArrayOnly:
    """An object that only implements ``__array__`` (and nothing to slice with)."""

    def __init__(self, array):
        self._array = array

    def __array__(self, dtype=None, copy=None):
        return self._array if dtype is None else self._array.astype(dtype)


class _Sliceable(_ArrayOnly):
    """An array-like with shape and row slicing, like h5py/zarr datasets."""

    def __init__(self, array):
        super().__init__(array)
        self.shape = array.shape
        self.slices = []

    def __getitem__(self, rows):
        self.slices.append(rows)
        return _ArrayOnly(self._array[rows])


def test_array_protocol_objects(model, x):
    expected = model.encode(x)
    same_codes(model.encode(_ArrayOnly(x)), expected)
    lazy = _Sliceable(x.astype(np.float16))
    same_codes(model.encode(lazy, batch_size=1000),
               model.encode(x.astype(np.float16).astype(np.float32)))
    assert lazy.slices == [slice(0, 1000), slice(1000, 2000), slice(2000, 3000)]


def test_dlpack_objects(model, x):
    class DLPackOnly:
        def __init__(self, array):
            self._array = array
            self.shape = array.shape

        def __dlpack__(self, **kw):
            return self._array.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self._array.__dlpack_device__()

        def __getitem__(self, rows):
            return DLPackOnly(self._array[rows])

    same_codes(model.encode(DLPackOnly(x)), model.encode(x))


def test_bad_dtypes_still_refused(model, x):
    for bad in (x.astype(np.complex64), x.astype(str), x.astype(object)):
        with pytest.raises(compressae.InvalidArgumentError):
            model.encode(bad)
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(_Sliceable(x.astype(np.complex64)))


# ------------------------------------------------------------- progress

def test_progress_callable_and_cancel(model, x):
    seen = []
    model.encode(x, batch_size=1000, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1000, 3000), (2000, 3000), (3000, 3000)]
    out = (np.zeros((len(x), K), np.int32), np.zeros((len(x), K), np.float32))
    with pytest.raises(compressae.Cancelled):
        model.encode(x, batch_size=1000, out=out, progress=lambda done, total: done < 2000)
    expected = model.encode(x[:2000])
    np.testing.assert_array_equal(out[0][:2000], expected.indices)
    assert (out[0][2000:] == 0).all()


def test_progress_true_writes_rows_to_stderr(model, x, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tqdm.auto", None)
    model.encode(x, batch_size=1000, progress=True)
    err = capsys.readouterr().err
    assert "3000/3000" in err and "row" in err


def test_progress_bad_type(model, x):
    with pytest.raises(TypeError):
        model.encode(x, progress="yes")


# ---------------------------------------------------------------- torch

def _torch():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "float64"])
def test_torch_tensors(model, x, dtype):
    torch = _torch()
    tensor = torch.from_numpy(x).to(getattr(torch, dtype))
    expected = model.encode(tensor.float().numpy())
    same_codes(model.encode(tensor, batch_size=1000), expected)
    same_codes(model.encode(tensor.requires_grad_(True)), expected)


def test_torch_requires_grad_non_contiguous_and_one_row(model, x):
    torch = _torch()
    leaf = torch.from_numpy(x.T.copy()).requires_grad_(True)
    tensor = leaf.t()  # non-contiguous, part of an autograd graph
    same_codes(model.encode(tensor, batch_size=512), model.encode(x))
    same_codes(model.encode(torch.from_numpy(x[0])), model.encode(x[:1]))
    # fit and search take tensors too.
    index = compressae.SparseIndex(model)
    index.add(tensor[:100])
    np.testing.assert_array_equal(index.search(tensor[:5], n=3)[1], index.search(x[:5], n=3)[1])
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(torch.zeros((3, D), dtype=torch.complex64))


def test_torch_fit_bfloat16():
    torch = _torch()
    x = random_rows(np.random.default_rng(0), 256, 32)
    runs = []
    for data in (x.astype(np.float32), torch.from_numpy(x).to(torch.bfloat16).requires_grad_(True)):
        with compressae.CompresSAE(32, latent_dim=64, k=4, seed=1) as m:
            m.fit(data, batch_size=64, epochs=1, validation_fraction=0.0, patience=0, learning_rate_decay="constant",
                  num_threads=1)
            runs.append(m.encoder_w)
    # bf16 rounds the inputs: close, not identical.
    assert np.abs(runs[0] - runs[1]).max() < 0.05
