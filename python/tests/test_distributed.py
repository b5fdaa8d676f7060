"""compressae as a Spark mapInPandas / Ray Data map_batches stage (local
mode): the codes equal a local encode, an index ships to a worker. Skipped
without pyspark / ray (failed under COMPRESSAE_ENGINE_TESTS=required)."""

import os
import pickle
import sys

import numpy as np
import pytest

import compressae
from compressae import SparseIndex
from compressae.distributed import CodesEncoder, encode_ray, encode_spark
from engines_common import need, unavailable

N = 300


@pytest.fixture(scope="module")
def model():
    X = compressae.datasets.wordnet10k()[:2000]
    m = compressae.CompresSAE(384, latent_dim=512, k=8, seed=0)
    m.fit(X, epochs=2, batch_size=500, learning_rate_decay="constant", validation_fraction=0.0, patience=0)
    return m


@pytest.fixture(scope="module")
def rows():
    return compressae.datasets.wordnet10k()[2000:2000 + N]


def assert_codes_equal(indices, values, expected):
    # Encoding is row-wise: batches of any size give the same codes.
    np.testing.assert_array_equal(np.asarray(indices, dtype=np.int32), expected.indices)
    np.testing.assert_allclose(np.asarray(values, dtype=np.float32), expected.values,
                               rtol=0, atol=1e-6)


def test_codes_encoder_pandas_and_numpy_batches(model, rows):
    pd = pytest.importorskip("pandas")
    expected = model.encode(rows)
    stage = pickle.loads(pickle.dumps(CodesEncoder(model, "embedding")))
    frame = pd.DataFrame({"id": np.arange(N), "embedding": list(rows)})
    out = stage.pandas(frame)
    assert list(out.columns) == ["id", "indices", "values"]
    assert_codes_equal(np.stack(out["indices"]), np.stack(out["values"]), expected)
    batch = stage({"id": np.arange(N), "embedding": rows})
    assert_codes_equal(batch["indices"], batch["values"], expected)
    assert compressae.get_num_threads() == 1  # one thread per worker task
    compressae.set_num_threads(0)
    with pytest.raises(compressae.InvalidArgumentError, match="no column"):
        stage({"vector": rows})


def test_spark_map_in_pandas(model, rows):
    need("pyspark", "Spark (pip install pyspark; needs Java 17)")
    need("pandas", "pandas")
    need("pyarrow", "pyarrow")
    from pyspark.sql import SparkSession
    # Workers run this interpreter (and its environment: PYTHONPATH,
    # COMPRESSAE_LIBRARY), so they import the same compressae.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        spark = (SparkSession.builder.master("local[2]").appName("compressae-test")
                 .config("spark.ui.enabled", "false")
                 .config("spark.ui.showConsoleProgress", "false")
                 .config("spark.sql.shuffle.partitions", "2")
                 .config("spark.sql.execution.arrow.pyspark.enabled", "true")
                 .getOrCreate())
    except Exception as exc:  # no Java, or it failed to start
        unavailable(f"Spark did not start: {exc}")
    try:
        df = spark.createDataFrame([(i, rows[i].tolist()) for i in range(N)],
                                   "id long, embedding array<float>").repartition(3)
        out = encode_spark(df, model, "embedding")          # the one line
        assert [f.name for f in out.schema.fields] == ["id", "indices", "values"]
        result = sorted(out.collect(), key=lambda r: r["id"])
    finally:
        spark.stop()
    assert [r["id"] for r in result] == list(range(N))
    assert_codes_equal([r["indices"] for r in result], [r["values"] for r in result],
                       model.encode(rows))


def test_ray_map_batches(model, rows):
    ray = need("ray", "Ray (pip install 'ray[data]')")
    need("pandas", "pandas")
    need("pyarrow", "pyarrow")
    try:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {k: v for k, v in os.environ.items()
                                           if k in ("PYTHONPATH", "COMPRESSAE_LIBRARY")}})
    except Exception as exc:
        unavailable(f"Ray did not start: {exc}")
    import logging
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        ds = ray.data.from_items([{"id": i, "embedding": rows[i]} for i in range(N)])
        out = encode_ray(ds, model, "embedding", concurrency=1, batch_size=128)   # the one line
        result = sorted(out.take_all(), key=lambda r: r["id"])
        # An index shipped to a task gives the same results there.
        index = SparseIndex(model)
        index.add(model.encode(rows))
        remote = ray.remote(lambda ix, q: ix.search(q, n=5)[1])
        shipped = ray.get(remote.remote(index, rows[:4]))
        np.testing.assert_array_equal(shipped, index.search(rows[:4], n=5)[1])
    finally:
        ray.shutdown()
    assert [r["id"] for r in result] == list(range(N))
    assert_codes_equal(np.stack([r["indices"] for r in result]),
                       np.stack([r["values"] for r in result]), model.encode(rows))
