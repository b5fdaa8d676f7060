"""SparseIndex: exactness against numpy brute force on the embedded real data,
threads, files, padding, bad input; and the metrics helpers."""

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import compressae
from helpers import fit_ref
from compressae import SparseIndex, exact_search, recall_at_n

H, K = 1024, 16
N_ITEMS, N_QUERIES = 9000, 300
COMBOS = [(mode, storage) for mode in ("sparse", "reconstructed")
          for storage in ("standard", "compact")]


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def data():
    """(items [9000, 384], queries [300, 384]): disjoint rows of wordnet10k."""
    X = compressae.datasets.wordnet10k()
    return X[:N_ITEMS], X[N_ITEMS:N_ITEMS + N_QUERIES]


@pytest.fixture(scope="module")
def model(data):
    """A model trained briefly on the catalogue (a few seconds)."""
    items, _ = data
    m = compressae.CompresSAE(384, latent_dim=H, k=K, seed=0)
    fit_ref(m, items, batch_size=1024, epochs=4, seed=0)
    yield m
    m.close()


@pytest.fixture(scope="module")
def codes(model, data):
    items, queries = data
    return model.encode(items), model.encode(queries)


@pytest.fixture(scope="module")
def indexes(model, codes):
    """One filled index per (mode, storage)."""
    built = {}
    for mode, storage in COMBOS:
        index = SparseIndex(model, mode=mode, storage=storage)
        index.add(codes[0])
        built[mode, storage] = index
    yield built
    for index in built.values():
        index.close()


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1)


def check_against_brute_force(scores, ids, true, tol=1e-5):
    """scores/ids from the index vs the exact float64 score matrix ``true``
    [q, N]: scores equal the best true scores to tol; each returned id has
    the returned score; ids equal the exact ranking wherever the true scores
    around that rank are separated by more than tol."""
    n = scores.shape[1]
    order = np.lexsort((np.broadcast_to(np.arange(true.shape[1]), true.shape), -true), axis=1)
    true_ids = order[:, :n]
    true_sorted = np.take_along_axis(true, true_ids, axis=1)
    np.testing.assert_allclose(scores, true_sorted, rtol=0, atol=tol)
    np.testing.assert_allclose(np.take_along_axis(true, ids, axis=1), scores, rtol=0, atol=tol)
    # Rank j is unambiguous when its score is > tol away from both neighbours
    # (the neighbour past the cut-off included).
    full = np.take_along_axis(true, order[:, :n + 1], axis=1)
    gap_above = np.full(true_sorted.shape, np.inf)
    gap_above[:, 1:] = full[:, :n - 1] - full[:, 1:n]
    gap_below = full[:, :n] - full[:, 1:n + 1]
    separated = (gap_above > tol) & (gap_below > tol)
    assert separated.mean() > 0.5  # the check below must have teeth
    np.testing.assert_array_equal(ids[separated], true_ids[separated])


# ---------------------------------------------------------------- exactness

def test_sparse_mode_is_brute_force_cosine_over_codes(indexes, codes):
    item_codes, query_codes = codes
    true = unit(query_codes.toarray()) @ unit(item_codes.toarray()).T
    scores, ids = indexes["sparse", "standard"].search(query_codes, n=100)
    assert scores.dtype == np.float32 and ids.dtype == np.int64
    assert scores.shape == ids.shape == (N_QUERIES, 100)
    check_against_brute_force(scores, ids, true)


def test_sparse_mode_dense_queries_are_encoded(indexes, codes, data, model):
    _, queries = data
    index = indexes["sparse", "standard"]
    # query_k = k: the query's own k-code; by default its 4k-code.
    for query_k, query_codes in ((K, codes[1]), (None, model.encode(queries, k=4 * K)),
                                 (3 * K, model.encode(queries, k=3 * K))):
        from_dense = index.search(queries, n=50, query_k=query_k)
        from_codes = index.search(query_codes, n=50)
        np.testing.assert_array_equal(from_dense[1], from_codes[1])
        np.testing.assert_allclose(from_dense[0], from_codes[0], rtol=0, atol=1e-6)
    for bad in (0, H + 1):
        with pytest.raises(compressae.InvalidArgumentError, match="query_k"):
            index.search(queries, n=5, query_k=bad)


def test_reconstructed_mode_sparse_queries(indexes, codes, model):
    item_codes, query_codes = codes
    true = unit(model.decode(query_codes)) @ unit(model.decode(item_codes)).T
    scores, ids = indexes["reconstructed", "standard"].search(query_codes, n=100)
    check_against_brute_force(scores, ids, true)


def test_reconstructed_mode_dense_queries_are_asymmetric(indexes, codes, model, data):
    _, queries = data
    true = unit(queries) @ unit(model.decode(codes[0])).T
    scores, ids = indexes["reconstructed", "standard"].search(queries, n=100)
    check_against_brute_force(scores, ids, true)


def test_one_dense_query_as_1d(indexes, data):
    _, queries = data
    for index in indexes.values():
        one = index.search(queries[7], n=10)
        many = index.search(queries[:10], n=10)
        assert one[0].shape == (1, 10)
        np.testing.assert_array_equal(one[1][0], many[1][7])


@pytest.mark.parametrize("mode", ["sparse", "reconstructed"])
def test_compact_storage_scores_are_close(indexes, codes, mode):
    _, query_codes = codes
    standard = indexes[mode, "standard"].search(query_codes, n=20)
    compact = indexes[mode, "compact"].search(query_codes, n=20)
    # Half-precision values: relative error about 2**-11 per nonzero.
    np.testing.assert_allclose(compact[0], standard[0], rtol=0, atol=2e-3)
    assert np.mean(compact[1] == standard[1]) > 0.9


def test_compact_storage_is_smaller(indexes):
    assert indexes["reconstructed", "standard"].nbytes == N_ITEMS * K * 8
    assert indexes["reconstructed", "compact"].nbytes == N_ITEMS * K * 4
    sparse_std = indexes["sparse", "standard"].nbytes
    sparse_compact = indexes["sparse", "compact"].nbytes
    # The sparse structure: list starts (8 B per latent + 1) and where each
    # 8192-item search tile starts in each list (4 B per latent and boundary).
    structure = (H + 1) * 8 + H * (-(-N_ITEMS // 8192) + 1) * 4
    # Posting entries: a 16-bit tile-relative item id + float32 / float16 value.
    assert sparse_std == N_ITEMS * K * 6 + structure
    assert sparse_compact == N_ITEMS * K * 4 + structure


def test_compact_recall_close_to_standard(indexes, data):
    items, queries = data
    _, true_ids = exact_search(items, queries, n=100)
    for mode in ("sparse", "reconstructed"):
        recall = {storage: recall_at_n(indexes[mode, storage].search(queries, n=100)[1], true_ids)
                  for storage in ("standard", "compact")}
        assert recall["standard"] > 0.15, (mode, recall)  # a trained model, not noise
        assert abs(recall["compact"] - recall["standard"]) <= 0.02, (mode, recall)


def test_reconstructed_beats_sparse_on_recall(indexes, data):
    # The paper's ordering of the two modes (on trained models).
    items, queries = data
    _, true_ids = exact_search(items, queries, n=100)
    sparse = recall_at_n(indexes["sparse", "standard"].search(queries, n=100)[1], true_ids)
    recon = recall_at_n(indexes["reconstructed", "standard"].search(queries, n=100)[1], true_ids)
    assert recon > sparse


# ---------------------------------------------------------------- threads

@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_multi_threaded_equals_single_threaded(indexes, codes, data, combo):
    index = indexes[combo]
    for queries in (codes[1], data[1]):
        one = index.search(queries, n=100, num_threads=1)
        two = index.search(queries, n=100, num_threads=2)
        four = index.search(queries, n=100, num_threads=4)
        for other in (two, four):
            np.testing.assert_array_equal(other[0], one[0])
            np.testing.assert_array_equal(other[1], one[1])


def test_concurrent_searches_from_python_threads(indexes, data):
    _, queries = data
    index = indexes["sparse", "standard"]
    expected = index.search(queries, n=30)
    start = threading.Barrier(3)

    def worker(_):
        start.wait()
        return [index.search(queries, n=30) for _ in range(5)]

    with ThreadPoolExecutor(3) as pool:
        for results in pool.map(worker, range(3)):
            for scores, ids in results:
                np.testing.assert_array_equal(ids, expected[1])
                np.testing.assert_array_equal(scores, expected[0])


def test_default_thread_count_setting():
    before = compressae.get_num_threads()
    try:
        compressae.set_num_threads(1)
        assert compressae.get_num_threads() == 1
        compressae.set_num_threads(3)
        assert compressae.get_num_threads() == 3
        compressae.set_num_threads(0)
        assert compressae.get_num_threads() >= 1
        with pytest.raises(compressae.InvalidArgumentError, match="num_threads"):
            compressae.set_num_threads(-1)
    finally:
        compressae.set_num_threads(0)
    assert compressae.get_num_threads() == before


# ---------------------------------------------------------------- files

@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_save_load_gives_identical_results(indexes, codes, data, model, tmp_path, combo):
    index = indexes[combo]
    path = tmp_path / "index.safetensors"
    index.save(path)
    with SparseIndex.load(path, model) as loaded:
        assert (loaded.mode, loaded.storage) == combo
        assert len(loaded) == len(index) == N_ITEMS
        assert loaded.k == index.k == K
        assert loaded.nbytes == index.nbytes
        assert loaded.model is model
        for queries in (codes[1], data[1]):
            a, b = index.search(queries, n=100), loaded.search(queries, n=100)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])


def test_save_load_with_model_file(indexes, data, model, tmp_path):
    index = indexes["reconstructed", "compact"]
    index.save(tmp_path / "index.st")
    model.save(tmp_path / "model.st")
    with compressae.CompresSAE.load(tmp_path / "model.st") as model2, \
            SparseIndex.load(tmp_path / "index.st", model2) as loaded:
        a, b = index.search(data[1], n=10), loaded.search(data[1], n=10)
        np.testing.assert_array_equal(a[1], b[1])


def test_load_with_another_model_is_refused(indexes, tmp_path):
    path = tmp_path / "index.safetensors"
    indexes["sparse", "standard"].save(path)
    # Same shape, different weights.
    with compressae.CompresSAE(384, latent_dim=H, k=K, seed=99) as other:
        with pytest.raises(compressae.InvalidArgumentError, match="model"):
            SparseIndex.load(path, other)
    # Different shape.
    with compressae.CompresSAE(384, latent_dim=2 * H, k=K, seed=0) as other:
        with pytest.raises(compressae.InvalidArgumentError):
            SparseIndex.load(path, other)


def test_load_missing_or_damaged_file(model, tmp_path):
    with pytest.raises(compressae.FileError):
        SparseIndex.load(tmp_path / "missing.safetensors", model)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(compressae.FormatError):
        SparseIndex.load(bad, model)


@pytest.mark.parametrize("mode, tensor", [("sparse", "posting_values"), ("reconstructed", "values")])
def test_load_refuses_subnormal_half_values(model, codes, tmp_path, mode, tensor):
    # The index writes zero or normal halves only; a subnormal one (which the
    # vector kernels' two variants would read differently) marks a damaged file.
    from st_numpy import read_safetensors, write_safetensors
    index = SparseIndex(model, mode=mode, storage="compact")
    index.add(codes[0][:50])
    path = tmp_path / "compact.safetensors"
    index.save(path)
    tensors, metadata = read_safetensors(path)
    bits = tensors[tensor].view(np.uint16)
    bits.flat[3] = 0x0001
    write_safetensors(path, tensors, metadata)
    with pytest.raises(compressae.FormatError, match="zero or normal half"):
        SparseIndex.load(path, model)


# ---------------------------------------------------------------- attributes, padding, inputs

def test_attributes(model, codes):
    index = SparseIndex(model, mode="reconstructed", storage="compact")
    assert (index.mode, index.storage, index.model) == ("reconstructed", "compact", model)
    assert len(index) == 0 and index.k is None and index.nbytes == 0
    index.add(codes[0][:10])
    assert len(index) == 10 and index.k == K
    assert "reconstructed" in repr(index) and "n=10" in repr(index)
    index.close()
    assert index.closed and "closed" in repr(index)
    with pytest.raises(compressae.InvalidHandleError, match="index is closed"):
        index.search(codes[1], n=5)
    index.close()  # twice is fine


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_no_padding_when_n_exceeds_the_items(model, codes, data, combo):
    # n above the item count gives every item once, (q, len(index)) arrays, no padding.
    with SparseIndex(model, *combo) as index:
        index.add(codes[0][:5])
        for queries in (codes[1][:4], data[1][:4]):
            scores, ids = index.search(queries, n=8)
            assert scores.shape == ids.shape == (4, 5)
            assert scores.flags.c_contiguous and ids.flags.c_contiguous
            np.testing.assert_array_equal(np.sort(ids, axis=1), np.tile(np.arange(5), (4, 1)))
            assert np.isfinite(scores).all()
            assert (np.diff(scores, axis=1) <= 0).all()


def test_incremental_adds_equal_one_add(model, codes):
    item_codes, query_codes = codes
    for mode in ("sparse", "reconstructed"):
        with SparseIndex(model, mode) as once, SparseIndex(model, mode) as parts:
            once.add(item_codes)
            parts.add(item_codes[:1000])
            parts.search(query_codes[:3], n=5)  # a search between adds
            parts.add(item_codes[1000:5000])
            parts.add(item_codes[5000:8500])
            # Posting lists that already span two 8192-item tiles, merged again.
            parts.search(query_codes[:3], n=5)
            parts.add(item_codes[8500:])
            a, b = once.search(query_codes, n=50), parts.search(query_codes, n=50)
            np.testing.assert_array_equal(a[1], b[1])
            np.testing.assert_array_equal(a[0], b[0])


def test_input_forms_agree(model, codes, data):
    pytest.importorskip("scipy")
    item_codes, query_codes = codes
    items, _ = data
    results = []
    for form in ("codes", "tuple", "csr", "dense"):
        with SparseIndex(model, "sparse") as index:
            if form == "codes":
                index.add(item_codes[:2000])
            elif form == "tuple":
                index.add((item_codes.indices[:2000].astype(np.int64), item_codes.values[:2000]))
            elif form == "csr":
                index.add(item_codes[:2000].to_csr())
            else:
                index.add(items[:2000])
            results.append(index.search(query_codes[:50], n=20))
            # Query forms too.
            tup = index.search((query_codes.indices[:50], query_codes.values[:50]), n=20)
            csr = index.search(query_codes[:50].to_csr(), n=20)
            np.testing.assert_array_equal(tup[1], results[-1][1])
            np.testing.assert_array_equal(csr[1], results[-1][1])
    for scores, ids in results[1:]:
        np.testing.assert_array_equal(ids[:, :10], results[0][1][:, :10])
        np.testing.assert_allclose(scores, results[0][0], atol=1e-5)


def test_model_closed_after_index_creation(codes, data):
    m = compressae.CompresSAE(384, latent_dim=256, k=8, seed=3)
    index = SparseIndex(m, "reconstructed")
    m.close()  # the C index keeps its model alive
    index.add(data[0][:100])
    scores, ids = index.search(data[1][:3], n=5)
    assert (ids >= 0).all()
    index.close()
    with pytest.raises(compressae.InvalidHandleError, match="model is closed"):
        SparseIndex(m)


def test_model_retrained_after_add_is_refused(data):
    items, queries = data
    with compressae.CompresSAE(384, latent_dim=256, k=8, seed=3) as m:
        index = SparseIndex(m)
        index.add(items[:100])
        fit_ref(m, items[:200], batch_size=100)
        with pytest.raises(compressae.InvalidArgumentError, match="trained"):
            index.search(queries[:2], n=5)
        with pytest.raises(compressae.InvalidArgumentError, match="trained"):
            index.add(items[100:110])
        index.close()


def test_index_pickles_with_its_model(indexes, codes):
    # Shipped to a worker as model + index file bytes: same results there.
    for (mode, storage), index in indexes.items():
        clone = pickle.loads(pickle.dumps(index))
        assert (clone.mode, clone.storage, len(clone)) == (mode, storage, len(index))
        expected = index.search(codes[1][:20], n=10)
        found = clone.search(codes[1][:20], n=10)
        np.testing.assert_array_equal(found[1], expected[1])
        np.testing.assert_array_equal(found[0], expected[0])
        clone.close()
        clone.model.close()


# ---------------------------------------------------------------- bad input

def test_bad_mode_or_storage(model):
    with pytest.raises(compressae.InvalidArgumentError, match="mode"):
        SparseIndex(model, mode="dense")
    with pytest.raises(compressae.InvalidArgumentError, match="storage"):
        SparseIndex(model, storage="tiny")
    with pytest.raises(TypeError, match="CompresSAE"):
        SparseIndex("not a model")


def test_search_on_an_empty_index(model, data, codes):
    # An empty index is an empty result, (q, 0), not an error; queries are still checked.
    for mode in ("sparse", "reconstructed"):
        with SparseIndex(model, mode) as index:
            for queries, q in ((data[1][:2], 2), (data[1][:0], 0), (codes[1][:3], 3)):
                scores, ids = index.search(queries, n=5)
                assert scores.shape == ids.shape == (q, 0)
                assert scores.dtype == np.float32 and ids.dtype == np.int64
            with pytest.raises(compressae.InvalidArgumentError, match="columns"):
                index.search(data[1][:2, :-1], n=5)


@pytest.mark.parametrize("n", [0, -1])
def test_bad_n(indexes, data, n):
    with pytest.raises(compressae.InvalidArgumentError, match="n must be >= 1") as info:
        indexes["sparse", "standard"].search(data[1][:2], n=n)
    assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        indexes["sparse", "standard"].search(data[1][:2], n=2.5)


@pytest.mark.parametrize("combo", COMBOS, ids=lambda c: "-".join(c))
def test_bad_queries(indexes, codes, data, combo):
    index = indexes[combo]
    queries = data[1][:4].copy()
    with pytest.raises(compressae.InvalidArgumentError, match="383 columns.*384"):
        index.search(queries[:, :383], n=5)
    nan = queries.copy()
    nan[2, 5] = np.nan
    with pytest.raises(compressae.InvalidArgumentError, match="row 2") as info:
        index.search(nan, n=5)
    assert isinstance(info.value, ValueError)
    zero = queries.copy()
    zero[1] = 0
    with pytest.raises(compressae.InvalidArgumentError, match="row 1"):
        index.search(zero, n=5)
    with pytest.raises(compressae.InvalidArgumentError, match="dim 2048"):
        index.search(compressae.SparseCodes(codes[1].indices, codes[1].values, 2048), n=5)
    bad_values = codes[1].values[:3].copy()
    bad_values[1, 0] = np.inf
    with pytest.raises(compressae.InvalidArgumentError, match="row 1"):
        index.search((codes[1].indices[:3], bad_values), n=5)
    dup = codes[1].indices[:3].copy()
    dup[2, 1] = dup[2, 0]
    with pytest.raises(compressae.InvalidArgumentError, match="twice"):
        index.search((dup, codes[1].values[:3]), n=5)
    with pytest.raises(compressae.InvalidArgumentError, match=r"\[0, 1024\)"):
        index.search((codes[1].indices[:3] + H, codes[1].values[:3]), n=5)
    with pytest.raises(compressae.InvalidArgumentError, match="num_threads"):
        index.search(queries, n=5, num_threads=-1)


def test_bad_adds(model, codes, data):
    pytest.importorskip("scipy")
    item_codes, _ = codes
    with SparseIndex(model) as index:
        index.add(item_codes[:10])
        with pytest.raises(compressae.InvalidArgumentError, match="k = 16"):
            index.add((item_codes.indices[:5, :8], item_codes.values[:5, :8]))
        with pytest.raises(compressae.InvalidArgumentError, match="columns"):
            index.add(data[0][:5, :100])
        dup = item_codes.indices[:5].copy()
        dup[3, 4] = dup[3, 0]
        with pytest.raises(compressae.InvalidArgumentError, match="row 3.*twice"):
            index.add((dup, item_codes.values[:5]))
        nan = data[0][:5].copy()
        nan[4, 0] = np.nan
        with pytest.raises(compressae.InvalidArgumentError, match="row 4"):
            index.add(nan)
        csr = item_codes[:5].to_csr().tolil()
        csr[0, int(np.setdiff1d(np.arange(H), item_codes.indices[0])[0])] = 1.0
        with pytest.raises(compressae.InvalidArgumentError, match="same number"):
            index.add(csr.tocsr())
        with pytest.raises(compressae.InvalidArgumentError, match="pair"):
            index.add((item_codes.indices[:5],))
        assert len(index) == 10  # failed adds add nothing
        index.add(data[0][:0])  # an empty add is a no-op
        assert len(index) == 10


# ---------------------------------------------------------------- metrics

def test_recall_at_n_by_hand():
    true = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    found = np.array([[3, 9, 0, 8], [7, 6, 5, 4]])
    assert recall_at_n(found, true) == pytest.approx((2 / 4 + 4 / 4) / 2)
    # n = 2: found[:2] vs true[:2] -> row 0: {3, 9} & {0, 1} = 0; row 1: {7, 6} & {4, 5} = 0
    assert recall_at_n(found, true, n=2) == 0.0
    assert recall_at_n(found[:, :1], true, n=1) == 0.0
    assert recall_at_n([[1, 0]], [[0, 1]]) == 1.0
    # -1 padding never matches, duplicates count once.
    assert recall_at_n([[0, -1, -1]], [[0, 1, -1]]) == pytest.approx(1 / 3)
    assert recall_at_n([[0, 0, 0]], [[0, 1, 2]]) == pytest.approx(1 / 3)
    # Fewer found columns than n count as misses; 1-D is one query.
    assert recall_at_n([2, 1], [1, 2, 3, 4]) == 0.5
    # Huge ids take the per-row path.
    big = 2**62
    assert recall_at_n([[big, 1], [3, 4]], [[1, big], [4, 5]]) == 0.75


def test_recall_at_n_bad_input():
    with pytest.raises(compressae.InvalidArgumentError, match="queries"):
        recall_at_n([[1, 2]], [[1, 2], [3, 4]])
    with pytest.raises(compressae.InvalidArgumentError, match="exceeds"):
        recall_at_n([[1, 2]], [[1, 2]], n=3)
    with pytest.raises(compressae.InvalidArgumentError, match="integer"):
        recall_at_n([[1.5]], [[1]])


def test_exact_search_by_hand():
    items = np.array([[1, 0], [0, 1], [1, 1], [-1, 0], [2, 0]], dtype=np.float32)
    query = np.array([[1, 0], [0, 3]], dtype=np.float32)
    scores, ids = exact_search(items, query, n=3)
    c = np.float32(np.sqrt(0.5))
    # Items 0 and 4 tie at cosine 1: the lower id first.
    np.testing.assert_array_equal(ids, [[0, 4, 2], [1, 2, 0]])
    np.testing.assert_allclose(scores, [[1, 1, c], [1, c, 0]], atol=1e-6)
    scores, ids = exact_search(items, query, n=2, metric="ip")
    np.testing.assert_array_equal(ids, [[4, 0], [1, 2]])
    np.testing.assert_allclose(scores, [[2, 1], [3, 3]])
    # n beyond the catalogue: padding.
    scores, ids = exact_search(items, query[0], n=7)
    np.testing.assert_array_equal(ids, [[0, 4, 2, 1, 3, -1, -1]])
    assert np.isneginf(scores[0, 5:]).all()
    assert scores.dtype == np.float32 and ids.dtype == np.int64


def test_exact_search_blocks_match_a_full_sort(data):
    items, queries = data
    items, queries = items[:3000], queries[:70]
    true = unit(queries) @ unit(items).T
    order = np.lexsort((np.broadcast_to(np.arange(true.shape[1]), true.shape), -true), axis=1)
    expected = order[:, :25]
    scores, ids = exact_search(items, queries, n=25, batch_size=16, item_batch_size=700)
    np.testing.assert_allclose(scores, np.take_along_axis(true, expected, 1), atol=1e-5)
    assert np.mean(ids == expected) > 0.99  # float32 vs float64 may swap near-ties
    default = exact_search(items, queries, n=25)
    np.testing.assert_array_equal(default[1], ids)


def test_exact_search_ties_across_blocks():
    # Every item scores the same: ids must come out 0, 1, 2, ... whatever the blocks.
    items = np.ones((50, 3), dtype=np.float32)
    _, ids = exact_search(items, np.ones((2, 3)), n=10, item_batch_size=7, batch_size=1)
    np.testing.assert_array_equal(ids, np.tile(np.arange(10), (2, 1)))


def test_exact_search_bad_input():
    items = np.ones((5, 3), dtype=np.float32)
    with pytest.raises(compressae.InvalidArgumentError, match="columns"):
        exact_search(items, np.ones((2, 4)))
    with pytest.raises(compressae.InvalidArgumentError, match="metric"):
        exact_search(items, np.ones((2, 3)), metric="l2")
    with pytest.raises(compressae.InvalidArgumentError, match="n must be >= 1"):
        exact_search(items, np.ones((2, 3)), n=0)
    bad = items.copy()
    bad[3, 1] = np.nan
    with pytest.raises(compressae.InvalidArgumentError, match="row 3"):
        exact_search(bad, np.ones((2, 3)))


# ------------------------------------------------------- rescored search

@pytest.mark.parametrize("storage", ["standard", "compact", "packed8", "packed4"])
def test_rescored_search_with_every_item_a_candidate_is_the_exhaustive_search(model, data, storage):
    items, queries = data
    with SparseIndex(model, mode="reconstructed", storage=storage) as index:
        index.add(items[:5000])
        before = index.nbytes
        exhaustive = index.search(queries, n=20)
        rescored = index.search(queries, n=20, candidates=5000)
        np.testing.assert_array_equal(rescored[1], exhaustive[1])
        np.testing.assert_array_equal(rescored[0], exhaustive[0])
        assert index.nbytes > before  # the candidate lists
        # Items added later join the lists.
        index.add(items[5000:])
        exhaustive = index.search(queries, n=20)
        rescored = index.search(queries, n=20, candidates=len(index))
        np.testing.assert_array_equal(rescored[1], exhaustive[1])
        np.testing.assert_array_equal(rescored[0], exhaustive[0])


def test_rescored_search_keeps_most_of_the_exhaustive_ranking(model, data, indexes):
    _, queries = data
    index = indexes["reconstructed", "standard"]
    scores, ids = index.search(queries, n=10)
    agreement = {}
    for candidates in (10, 100, 1000):
        got_scores, got = index.search(queries, n=10, candidates=candidates)
        agreement[candidates] = recall_at_n(got, ids)
        # Every score returned is the item's exact score.
        exact = {}
        all_scores, all_ids = index.search(queries[:5], n=len(index))
        for q in range(5):
            exact = dict(zip(all_ids[q].tolist(), all_scores[q].tolist()))
            assert [exact[i] for i in got[q]] == got_scores[q].tolist()
    # More candidates never lose agreement here, and a thousand of 9000 keep nearly all.
    assert agreement[10] <= agreement[100] <= agreement[1000]
    assert agreement[1000] >= 0.95, agreement


def test_candidates_are_for_reconstructed_mode_and_at_least_one(model, data, indexes):
    _, queries = data
    with pytest.raises(compressae.InvalidArgumentError, match="candidates applies to reconstructed mode"):
        indexes["sparse", "standard"].search(queries[:2], n=3, candidates=100)
    with pytest.raises(compressae.InvalidArgumentError, match="candidates must be >= 1"):
        indexes["reconstructed", "standard"].search(queries[:2], n=3, candidates=0)
    with pytest.raises(TypeError):
        indexes["reconstructed", "standard"].search(queries[:2], n=3, candidates=2.5)
