"""PackedCodes and the packed index storages: sizes, round trips, crafted
buffers, and exactness of packed8 / packed4 indexes against numpy brute
force over the dequantised codes."""

import numpy as np
import pytest

import compressae
from compressae import PackedCodes, SparseCodes, SparseIndex
from compressae.errors import FormatError, InvalidArgumentError
from compressae.packed import row_bytes
from helpers import fit_ref
from test_index import check_against_brute_force, unit

H, K = 1024, 16


def random_codes(rng, n, k, h):
    indices = np.array([rng.choice(h, size=k, replace=False) for _ in range(n)], dtype=np.int32)
    values = rng.normal(size=(n, k)).astype(np.float32)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    return SparseCodes(np.take_along_axis(indices, order, 1), np.take_along_axis(values, order, 1), h)


def test_row_bytes_formula():
    # h = 4096, k = 32: Elias-Fano 32 * 7 + 32 + 32 = 288 index bits.
    assert row_bytes(4096, 32, 8) == 4 + (288 + 256) // 8 == 72
    assert row_bytes(4096, 32, 4) == 4 + (288 + 128) // 8 == 56
    assert row_bytes(4096, 32, 8, "fixed-width") == 4 + (32 * 12 + 256) // 8 == 84
    assert row_bytes(4096, 16, 8) == 4 + (16 * 8 + 32 + 128) // 8 == 40
    assert row_bytes(4096, 64, 4) == 4 + (64 * 6 + 128 + 256) // 8 == 100
    with pytest.raises(InvalidArgumentError):
        row_bytes(4096, 32, 6)


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize("coding", ["auto", "fixed-width", "elias-fano"])
def test_round_trip(rng, bits, coding, tmp_path):
    codes = random_codes(rng, 200, 24, 3000)
    packed = codes.pack(bits=bits, index_coding=coding)
    assert (packed.n, packed.k, packed.dim, packed.bits) == (200, 24, 3000, bits)
    assert packed.nbytes == 200 * packed.bytes_per_row == len(packed.tobytes()) - 28
    back = packed.unpack()
    top = 2 ** (bits - 1) - 1
    step = np.abs(codes.values).max(axis=1, keepdims=True) / top
    # Same latents per row; values within half a level.
    for i in range(200):
        original = dict(zip(codes.indices[i], codes.values[i]))
        assert set(back.indices[i]) == set(original)
        restored = np.array([original[j] for j in back.indices[i]])
        assert np.all(np.abs(back.values[i] - restored) <= step[i] / 2 * 1.0001)
        assert np.all(np.diff(np.abs(back.values[i])) <= 0)
    assert back.pack(bits=bits, index_coding=packed.index_coding) == packed
    assert PackedCodes.frombytes(packed.tobytes()) == packed
    packed.save(tmp_path / "codes.bin")
    assert PackedCodes.load(tmp_path / "codes.bin") == packed


def test_zero_rows_pack_to_the_header_alone(tmp_path):
    empty = SparseCodes(np.zeros((0, 5), np.int32), np.zeros((0, 5), np.float32), 100)
    packed = empty.pack(bits=4)
    assert (packed.n, packed.k, packed.dim, packed.nbytes, len(packed)) == (0, 5, 100, 0, 0)
    assert len(packed.tobytes()) == 28
    back = packed.unpack()
    assert back.indices.shape == (0, 5) and back.values.shape == (0, 5)
    assert PackedCodes.frombytes(packed.tobytes()) == packed
    packed.save(tmp_path / "empty.bin")
    assert PackedCodes.load(tmp_path / "empty.bin") == packed


def test_crafted_buffers_raise(rng):
    good = bytearray(random_codes(rng, 4, 6, 500).pack(bits=4).tobytes())
    with pytest.raises(FormatError):
        PackedCodes.frombytes(good[:-1])
    with pytest.raises(FormatError):
        PackedCodes.frombytes(b"not packed codes at all, no")
    bad = bytearray(good)
    bad[9] = 5  # bits
    with pytest.raises(FormatError):
        PackedCodes.frombytes(bad)
    # Every single-bit flip of the rows: unpack succeeds with valid codes or raises.
    failures = 0
    for byte in range(28, len(good)):
        for bit in range(8):
            bad = bytearray(good)
            bad[byte] ^= 1 << bit
            try:
                codes = PackedCodes.frombytes(bad).unpack()
            except FormatError:
                failures += 1
            else:
                assert codes.indices.min() >= 0 and codes.indices.max() < 500
    assert failures > 0


def test_bad_codes_refused():
    with pytest.raises(InvalidArgumentError):
        SparseCodes(np.array([[1, 1]]), np.array([[1.0, 2.0]]), 10).pack()
    with pytest.raises(InvalidArgumentError):
        SparseCodes(np.array([[1, 2]]), np.array([[1.0, np.nan]]), 10).pack()
    with pytest.raises(InvalidArgumentError):
        SparseCodes(np.array([[1, 2]]), np.array([[1.0, 2.0]]), 10).pack(bits=2)


@pytest.fixture(scope="module")
def trained():
    X = compressae.datasets.wordnet10k()
    items, queries = X[:4000], X[9000:9200]
    m = compressae.CompresSAE(384, latent_dim=H, k=K, seed=0)
    fit_ref(m, items, batch_size=1024, epochs=3, seed=0)
    yield m, items, queries
    m.close()


@pytest.mark.parametrize("storage, bits", [("packed8", 8), ("packed4", 4)])
def test_packed_index_is_brute_force_over_dequantised_codes(trained, storage, bits):
    model, items, queries = trained
    # Sparse mode, code queries and dense queries (encoded at 4k).
    codes = model.encode(items)
    deq = codes.pack(bits=bits).unpack()
    with SparseIndex(model, mode="sparse", storage=storage) as index:
        index.add(codes[:2500])
        index.add(codes[2500:].pack(bits=bits))  # packed codes add their own levels
        query_codes = model.encode(queries)
        true = unit(query_codes.toarray()) @ unit(deq.toarray()).T
        scores, ids = index.search(query_codes, n=50)
        check_against_brute_force(scores, ids, true)
        q4 = model.encode(queries, k=4 * K)
        scores, ids = index.search(queries, n=50)
        check_against_brute_force(scores, ids, unit(q4.toarray()) @ unit(deq.toarray()).T)
    # Reconstructed and asymmetric: refitted values, quantised.
    refit = model.encode(items, refit=True).pack(bits=bits).unpack()
    decoded = unit(model.decode(refit))
    with SparseIndex(model, mode="reconstructed", storage=storage) as index:
        index.add(items)
        scores, ids = index.search(queries, n=50)
        check_against_brute_force(scores, ids, unit(queries) @ decoded.T)
        query_codes = model.encode(queries)
        scores, ids = index.search(query_codes, n=50)
        check_against_brute_force(scores, ids, unit(model.decode(query_codes)) @ decoded.T)


@pytest.mark.parametrize("mode", ["sparse", "reconstructed"])
@pytest.mark.parametrize("storage", ["packed8", "packed4"])
def test_packed_index_save_load_and_bytes(trained, tmp_path, mode, storage):
    model, items, queries = trained
    with SparseIndex(model, mode=mode, storage=storage) as index:
        index.add(items[:1000])
        before = index.search(queries, n=20)
        index.save(tmp_path / "i.safetensors")
        with SparseIndex.load(tmp_path / "i.safetensors", model) as loaded:
            assert loaded.storage == storage
            after = loaded.search(queries, n=20)
            np.testing.assert_array_equal(before[1], after[1])
            np.testing.assert_array_equal(before[0], after[0])
        with SparseIndex(model, mode=mode, storage="compact") as compact:
            compact.add(items[:1000])
            assert index.nbytes < compact.nbytes
