"""compressae.export without engines: the sign split's maths, each payload's
format (the Elasticsearch/OpenSearch JSON against their documented schema),
to_torch."""

import json
import math

import numpy as np
import pytest

import compressae
from compressae import SparseCodes, SparseIndex, export

H, K = 512, 8


@pytest.fixture(scope="module")
def model():
    X = compressae.datasets.wordnet10k()[:1500]
    m = compressae.CompresSAE(384, latent_dim=H, k=K, seed=0)
    m.fit(X, epochs=2, batch_size=500, learning_rate_decay="constant", validation_fraction=0.0, patience=0)
    return m


@pytest.fixture(scope="module")
def codes(model):
    X = compressae.datasets.wordnet10k()
    return model.encode(X[:1500]), model.encode(X[1500:1540])


def test_sign_split_keeps_norms_and_exact_query_keeps_dot_products(codes):
    items, queries = codes
    assert (items.values < 0).any()  # the case this is for
    split = items.to_nonnegative()
    assert split.dim == 2 * H and split.k == K and (split.values >= 0).all()
    np.testing.assert_allclose(np.linalg.norm(split.values, axis=1),
                               np.linalg.norm(items.values, axis=1), rtol=1e-6)
    exact = queries.toarray().astype(np.float64) @ items.toarray().T
    q = export.split_query(queries)
    assert q.k == 2 * K and q.dim == 2 * H
    np.testing.assert_allclose(q.toarray().astype(np.float64) @ split.toarray().T, exact,
                               rtol=0, atol=1e-6)
    # The non-negative query scores (q.y + |q|.|y|) / 2.
    approx = queries.to_nonnegative().toarray().astype(np.float64) @ split.toarray().T
    overlap = np.abs(queries.toarray()).astype(np.float64) @ np.abs(items.toarray()).T
    np.testing.assert_allclose(approx, (exact + overlap) / 2, rtol=0, atol=1e-6)


def test_reconstructed_rows_score_the_reconstructed_index(model, codes):
    X = compressae.datasets.wordnet10k()
    items = model.encode(X[:1500], refit=True)
    queries = X[1500:1540]
    with SparseIndex(model, mode="reconstructed") as index:
        index.add(items)
        scores, ids = index.search(queries, n=10)
    rows = export.reconstructed_items(model, items).toarray().astype(np.float64)
    q = export.reconstructed_queries(model, queries)
    assert q.k == H
    dots = q.toarray().astype(np.float64) @ rows.T
    np.testing.assert_allclose(np.take_along_axis(dots, ids, axis=1), scores, atol=2e-5)
    top = export.reconstructed_queries(model, queries, n_nonzero=64)
    assert top.k == 64
    assert (np.abs(top.values[:, :-1]) >= np.abs(top.values[:, 1:])).all()


def test_qdrant_milvus_pgvector_payloads(codes):
    items, _ = codes
    unit = export.normalize_rows(items)
    q = export.to_qdrant(items[:3])
    assert set(q[0]) == {"indices", "values"}
    assert q[0]["indices"] == sorted(q[0]["indices"])
    assert all(isinstance(i, int) for i in q[0]["indices"])
    assert math.isclose(sum(v * v for v in q[0]["values"]), 1.0, rel_tol=1e-5)
    m = export.to_milvus(items[:3])
    assert all(v > 0 for v in m[0].values()) and max(m[0]) < 2 * H
    assert set(m[0]) == set(unit.to_nonnegative().indices[0].tolist())
    literal = export.to_pgvector(items[:1])[0]
    body, dim = literal.split("/")
    assert dim == str(H)
    pairs = [p.split(":") for p in body.strip("{}").split(",")]
    parsed = np.zeros(H, dtype=np.float32)
    for i, v in pairs:
        parsed[int(i) - 1] = np.float32(v)  # 1-based
    np.testing.assert_array_equal(parsed, unit.toarray()[0])
    json.dumps([q, export.to_sparse_vector_documents(items[:3])])  # plain Python types


def test_duplicate_latents_and_nan_are_refused():
    dup = SparseCodes([[1, 1, 2]], [[0.5, 0.1, 0.2]], 4)
    with pytest.raises(compressae.InvalidArgumentError, match="twice"):
        export.to_qdrant(dup)
    bad = SparseCodes([[0, 1]], [[np.nan, 1.0]], 4)
    with pytest.raises(compressae.InvalidArgumentError, match="NaN"):
        export.to_milvus(bad)


# ---- Elasticsearch / OpenSearch: the documented schema, checked field by field

def check_weights(weights):
    # sparse_vector / rank_features: an object of feature name -> one
    # strictly positive finite float (no arrays, no zero or negative values).
    assert isinstance(weights, dict) and weights
    for name, value in weights.items():
        assert isinstance(name, str) and name.isdigit() and "." not in name
        assert type(value) is float and math.isfinite(value) and value > 0


def test_elasticsearch_schema(codes):
    items, queries = codes
    mapping = export.sparse_vector_mapping("codes")
    assert mapping == {"mappings": {"properties": {"codes": {"type": "sparse_vector"}}}}
    docs = export.to_sparse_vector_documents(items, "codes")
    assert len(docs) == len(items)
    for doc in docs:
        assert list(doc) == ["codes"]
        check_weights(doc["codes"])
    bodies = export.sparse_vector_query(queries, "codes", size=10)
    allowed = {"field", "query_vector", "inference_id", "query", "prune", "pruning_config",
               "boost", "_name"}  # the sparse_vector query's documented parameters
    for body in bodies:
        assert set(body) == {"size", "query"} and body["size"] == 10
        (kind, params), = body["query"].items()
        assert kind == "sparse_vector" and set(params) <= allowed
        assert params["field"] == "codes" and params["prune"] is False
        check_weights(params["query_vector"])
    json.loads(json.dumps(bodies))


def test_opensearch_schema(codes):
    _, queries = codes
    assert export.sparse_vector_mapping("v", engine="opensearch") == {
        "mappings": {"properties": {"v": {"type": "rank_features"}}}}
    for body in export.sparse_vector_query(queries, "v", size=5, engine="opensearch"):
        (kind, params), = body["query"].items()
        assert kind == "neural_sparse" and list(params) == ["v"]
        assert list(params["v"]) == ["query_tokens"]
        check_weights(params["v"]["query_tokens"])
    with pytest.raises(compressae.InvalidArgumentError, match="engine"):
        export.sparse_vector_mapping("v", engine="solr")


def test_elasticsearch_scoring_emulated_matches_index_over_split_codes(codes):
    # Elasticsearch scores sum(query weight * stored weight), the stored
    # weight kept to 9 significant bits (the float's top 17 bits). Emulated
    # on the JSON payloads, the top-10 equals the index over split codes,
    # up to ties within that rounding (relative 2**-8).
    items, queries = codes
    docs = export.to_sparse_vector_documents(items)
    stored = np.zeros((len(items), 2 * H), dtype=np.float32)
    for row, doc in enumerate(docs):
        for name, value in doc["codes"].items():
            stored[row, int(name)] = value
    stored = (stored.view(np.uint32) & np.uint32(0xFFFF8000)).view(np.float32)
    query = np.zeros((len(queries), 2 * H), dtype=np.float64)
    for row, body in enumerate(export.sparse_vector_query(queries)):
        for name, value in body["query"]["sparse_vector"]["query_vector"].items():
            query[row, int(name)] = value
    es_scores = query @ stored.T.astype(np.float64)
    split_model = compressae.CompresSAE(384, latent_dim=2 * H, k=K)
    with SparseIndex(split_model) as index:
        index.add(items.to_nonnegative())
        scores, ids = index.search(queries.to_nonnegative(), n=10)
    es_ids = np.argsort(-es_scores, axis=1, kind="stable")[:, :10]
    for q in range(len(queries)):
        for item in set(es_ids[q]) ^ set(ids[q]):
            assert abs(es_scores[q, item] - es_scores[q, ids[q]].min()) <= 2 ** -8 * scores[q, 0]


def test_to_torch(codes):
    torch = pytest.importorskip("torch")
    items, _ = codes
    coo = items[:20].to_torch()
    assert coo.layout == torch.sparse_coo and coo.is_coalesced() and coo.shape == (20, H)
    np.testing.assert_array_equal(coo.to_dense().numpy(), items[:20].toarray())
    csr = items[:20].to_torch(layout="csr")
    assert csr.layout == torch.sparse_csr
    np.testing.assert_array_equal(csr.to_dense().numpy(), items[:20].toarray())
    dup = SparseCodes([[1, 1]], [[0.5, 0.25]], 3).to_torch()  # duplicates add up
    np.testing.assert_array_equal(dup.to_dense().numpy(), [[0, 0.75, 0]])
    with pytest.raises(compressae.InvalidArgumentError, match="layout"):
        items.to_torch(layout="bsr")
