"""compressae as a stage of Spark and Ray Data jobs: :mod:`compressae.distributed`.

One call turns a DataFrame / Dataset with an embedding column into one with
the codes::

    from compressae.distributed import encode_spark, encode_ray
    codes_df = encode_spark(df, model, "embedding")    # Spark mapInPandas
    codes_ds = encode_ray(ds, model, "embedding")      # Ray Data map_batches

The model is shipped once (a Spark broadcast, a Ray object reference; it
pickles through its weights) and every task encodes with one thread, since
the engine already runs one task per core. The codes come out as two
columns, ``indices`` (int32) and ``values`` (float32), ``k`` of each per row,
by decreasing ``|value|``: Spark ``array<int>`` / ``array<float>``, Ray
fixed-shape tensor columns; both are stored as Arrow lists by Parquet.
:class:`CodesEncoder` is the stage itself, for other frameworks (Dask,
multiprocessing pools, plain pandas).

Neither Spark nor Ray is a dependency of compressae: they are imported by
the functions that need them.
"""

from __future__ import annotations

import numpy as np

from .errors import InvalidArgumentError
from .model import CompresSAE, SparseCodes

__all__ = ["CodesEncoder", "encode_spark", "encode_ray", "spark_codes_schema"]


def _rows(column) -> np.ndarray:
    """A batch's embedding column as one [n, d] array.

    Accepts a 2-D array (a Ray tensor column) or a sequence of 1-D arrays
    (a pandas column of Spark arrays, an Arrow list column).
    """
    if isinstance(column, np.ndarray) and column.ndim == 2:
        return column
    values = column.to_numpy() if hasattr(column, "to_numpy") else column
    if len(values) == 0:
        return np.zeros((0, 0), dtype=np.float32)
    try:
        return np.stack([np.asarray(v) for v in values])
    except ValueError as exc:
        raise InvalidArgumentError(
            f"the embedding column must hold vectors of one length: {exc}") from None


class CodesEncoder:
    """The encoding stage: batches with an embedding column in, codes out.

    Picklable (the model pickles through its weights), so it can be sent to
    workers as it is; it sets the library to ``num_threads`` threads in the
    worker before its first batch.

    Parameters
    ----------
    model : CompresSAE, or a zero-argument callable returning one
        The trained model (a callable, such as a Spark broadcast's
        ``lambda: bc.value`` or a Ray ``ray.get`` wrapper, is called once in
        the worker).
    column : str, default "embedding"
        Input column of vectors (any real dtype).
    k : int, optional
        Nonzeros per code (default the model's).
    refit : bool, default False
        Least-squares values (see :meth:`CompresSAE.encode`).
    keep : sequence of str, optional
        Input columns copied to the output (e.g. an id). Default: every
        column except ``column``.
    num_threads : int, default 1
        Library threads per worker process.
    """

    def __init__(self, model, column: str = "embedding", k: int | None = None,
                 refit: bool = False, keep=None, num_threads: int = 1):
        if not (isinstance(model, CompresSAE) or callable(model)):
            raise TypeError(f"model must be a CompresSAE or a callable, got {type(model).__name__}")
        self._model_source = model
        self._model = model if isinstance(model, CompresSAE) else None
        self.column, self.k, self.refit = column, k, refit
        self.keep = None if keep is None else list(keep)
        self.num_threads = num_threads
        self._threads_set = False

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_threads_set"] = False
        if not isinstance(self._model_source, CompresSAE):
            state["_model"] = None  # fetched again in the worker
        return state

    @property
    def model(self) -> CompresSAE:
        if self._model is None:
            self._model = self._model_source()
            if not isinstance(self._model, CompresSAE):
                raise TypeError("the model callable must return a CompresSAE")
        if not self._threads_set:
            from .index import set_num_threads
            set_num_threads(self.num_threads)
            self._threads_set = True
        return self._model

    def encode(self, X) -> SparseCodes:
        """Codes of one batch of rows (``model.encode``)."""
        return self.model.encode(X, k=self.k, refit=self.refit)

    def _kept(self, names):
        if self.keep is not None:
            missing = [c for c in self.keep if c not in names]
            if missing:
                raise InvalidArgumentError(f"columns {missing} are not in the batch")
            return self.keep
        return [c for c in names if c != self.column]

    def pandas(self, frame):
        """One pandas DataFrame in, one out (kept columns, ``indices``, ``values``)."""
        import pandas as pd
        if self.column not in frame.columns:
            raise InvalidArgumentError(f"the batch has no column {self.column!r}")
        X = _rows(frame[self.column])
        out = pd.DataFrame({c: frame[c].to_numpy() for c in self._kept(list(frame.columns))})
        if len(frame) == 0:
            out["indices"] = pd.Series([], dtype=object)
            out["values"] = pd.Series([], dtype=object)
            return out
        codes = self.encode(X)
        out["indices"] = list(codes.indices)
        out["values"] = list(codes.values)
        return out

    def __call__(self, batch):
        """A Ray ``map_batches`` batch: a dict of NumPy arrays or a pandas DataFrame."""
        if isinstance(batch, dict):
            if self.column not in batch:
                raise InvalidArgumentError(f"the batch has no column {self.column!r}")
            out = {c: batch[c] for c in self._kept(list(batch))}
            X = _rows(batch[self.column])
            if X.shape[0] == 0:
                k = self.k or self.model.k
                out["indices"] = np.zeros((0, k), dtype=np.int32)
                out["values"] = np.zeros((0, k), dtype=np.float32)
                return out
            codes = self.encode(X)
            out["indices"], out["values"] = codes.indices, codes.values
            return out
        return self.pandas(batch)

    def map_in_pandas(self, frames):
        """Spark ``mapInPandas``: an iterator of DataFrames in, one out."""
        for frame in frames:
            yield self.pandas(frame)


def spark_codes_schema(input_schema, column: str = "embedding", keep=None):
    """The Spark schema of :func:`encode_spark`'s output: kept columns,
    ``indices array<int>``, ``values array<float>``."""
    from pyspark.sql import types as T
    fields = [f for f in input_schema.fields
              if (f.name in keep if keep is not None else f.name != column)]
    if keep is not None:
        order = {name: i for i, name in enumerate(keep)}
        fields.sort(key=lambda f: order[f.name])
    return T.StructType(fields + [
        T.StructField("indices", T.ArrayType(T.IntegerType(), containsNull=False), False),
        T.StructField("values", T.ArrayType(T.FloatType(), containsNull=False), False),
    ])


def encode_spark(df, model: CompresSAE, column: str = "embedding", k: int | None = None,
                 refit: bool = False, keep=None, num_threads: int = 1):
    """Encode a Spark DataFrame's embedding column (``array<float>`` or
    ``array<double>``) with ``mapInPandas``.

    The model is broadcast once; each Python worker encodes its partitions
    with ``num_threads`` library threads. Returns a DataFrame with the kept
    columns (default: all but ``column``) and ``indices array<int>``,
    ``values array<float>``.
    """
    if keep is not None:
        keep = list(keep)
    broadcast = df.sparkSession.sparkContext.broadcast(model)
    stage = CodesEncoder(_BroadcastValue(broadcast), column, k, refit, keep, num_threads)
    return df.mapInPandas(stage.map_in_pandas, schema=spark_codes_schema(df.schema, column, keep))


class _BroadcastValue:
    """Picklable zero-argument callable returning a Spark broadcast's value."""

    def __init__(self, broadcast):
        self.broadcast = broadcast

    def __call__(self):
        return self.broadcast.value


class _RayObject:
    """Picklable zero-argument callable returning a Ray object's value."""

    def __init__(self, ref):
        self.ref = ref

    def __call__(self):
        import ray
        return ray.get(self.ref)


class _RayStage:
    # An actor class for map_batches: the model is fetched once per actor.
    def __init__(self, encoder: CodesEncoder):
        self.encoder = encoder

    def __call__(self, batch):
        return self.encoder(batch)


def encode_ray(ds, model: CompresSAE, column: str = "embedding", k: int | None = None,
               refit: bool = False, keep=None, num_threads: int = 1, concurrency=None,
               batch_size: int | None = 4096):
    """Encode a Ray Dataset's embedding column with ``map_batches``.

    The model is put in the object store once and fetched by each actor
    (``concurrency`` actors, default Ray's choice; one CPU each), which
    encodes with ``num_threads`` library threads. Returns a Dataset with
    the kept columns and ``indices`` / ``values`` tensor columns of shape
    ``(k,)``.
    """
    import ray
    encoder = CodesEncoder(_RayObject(ray.put(model)), column, k, refit, keep, num_threads)
    options = dict(fn_constructor_args=(encoder,), batch_format="numpy",
                   batch_size=batch_size, num_cpus=1)
    if concurrency is not None:
        options["concurrency"] = concurrency
    return ds.map_batches(_RayStage, **options)
