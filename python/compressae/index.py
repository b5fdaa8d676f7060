"""Retrieval over compressed codes: :class:`SparseIndex`.

A thin owner of a C ``csae_index`` (see docs/maths.md, "Retrieval"). Two modes:

- ``"sparse"``: cosine between the k-sparse codes, served by an inverted
  index (one posting list per latent). Exact: the same ranking as
  brute-force cosine over the codes.
- ``"reconstructed"``: cosine between decoded vectors
  ``x_hat = codes @ decoder_w``, in O(k) per item. A dense query is used as
  it is (asymmetric search: no query-side compression error).

and two storages: ``"standard"`` (float32 values: int32 index + value per
nonzero in reconstructed mode, the paper's CSR; a 16-bit item id + value in
sparse mode's posting lists) and ``"compact"`` (half-precision values, and
16-bit latent indices in reconstructed mode; 4 bytes per nonzero; scores are
then approximate), and ``"packed8"`` / ``"packed4"``: values as the 8- or
4-bit levels of :meth:`SparseCodes.pack` with a float32 scale per item (3 or
2.5 bytes per nonzero + 4 per item), ranking exactly as brute force over the
packed codes' dequantised values.
"""

from __future__ import annotations

import ctypes
import os
import sys

import numpy as np

from . import _ffi
from ._handle import IndexHandle, check
from .errors import InvalidArgumentError
from ._args import _choice, _path
from ._chunks import CHUNK_WORK, RowSource, empty, encode_chunk_rows, offset_rows
from ._interrupt import InterruptGuard
from .model import CompresSAE, SparseCodes, _size, _threads

#: Code entries (rows x k) per chunk of ``add`` given codes: appending an
#: entry costs a few operations, so a chunk of 2**24 takes well under a second.
_ADD_CODES_CHUNK_ENTRIES = 2**24

#: Queries the reconstructed-mode search projects onto the decoder in one GEMM.
_QUERY_BLOCK = 64

__all__ = ["SparseIndex", "set_num_threads", "get_num_threads"]

_MODES = {"sparse": _ffi.CSAE_INDEX_SPARSE, "reconstructed": _ffi.CSAE_INDEX_RECONSTRUCTED}
_STORAGES = {"standard": _ffi.CSAE_STORAGE_STANDARD, "compact": _ffi.CSAE_STORAGE_COMPACT,
             "packed8": _ffi.CSAE_STORAGE_PACKED8, "packed4": _ffi.CSAE_STORAGE_PACKED4}
_MODE_NAMES = {v: k for k, v in _MODES.items()}
_STORAGE_NAMES = {v: k for k, v in _STORAGES.items()}


def set_num_threads(num_threads: int) -> None:
    """Set the number of worker threads of calls given no thread count.

    Applies to every call given ``num_threads=0`` (the default of ``fit``,
    ``encode``, ``refit``, ``decode``, :meth:`SparseIndex.add` and
    :meth:`SparseIndex.search`), process-wide.

    Parameters
    ----------
    num_threads : int
        ``>= 1``, or 0 for the default (the initial setting): the
        environment's ``CSAE_NUM_THREADS``, else ``OMP_NUM_THREADS`` (its
        first entry), else the CPUs this process may use (its affinity mask,
        capped by its cgroup's CPU quota), read once per process.
    """
    check(_ffi.csae_set_num_threads(_threads(num_threads)))


def get_num_threads() -> int:
    """Number of worker threads calls use by default (see :func:`set_num_threads`).

    Returns
    -------
    int
        The set count, or the default when it is 0.
    """
    return int(_ffi.csae_get_num_threads())


def _is_codes(obj) -> bool:
    """True for the sparse input forms: SparseCodes, an (indices, values)
    tuple or a scipy sparse matrix; dense arrays are everything else."""
    if isinstance(obj, (SparseCodes, tuple)):
        return True
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(obj)


def _code_arrays(codes, h: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(indices int32 [n, k], values float32 [n, k]) of a sparse input.

    Index ranges, duplicates within a row and non-finite values are checked
    by the library, which names the row.
    """
    if isinstance(codes, SparseCodes):
        if codes.dim != h:
            raise InvalidArgumentError(
                f"the {what} have dim {codes.dim} but the model's latent_dim is {h}")
        # Rows selected with a step (codes[::2]) are views with gaps.
        return (np.ascontiguousarray(codes.indices, dtype=np.int32),
                np.ascontiguousarray(codes.values, dtype=np.float32))
    if isinstance(codes, tuple):
        if len(codes) != 2:
            raise InvalidArgumentError(
                f"{what} given as a tuple must be a pair (indices, values), "
                f"got {len(codes)} elements")
        indices, values = np.asarray(codes[0]), np.asarray(codes[1])
        if indices.dtype.kind not in "iu":
            raise InvalidArgumentError(
                f"indices must be an integer array, got dtype {indices.dtype}")
        if values.dtype.kind not in "fiu":
            raise InvalidArgumentError(f"values must be a float array, got dtype {values.dtype}")
        if indices.ndim == 1:
            indices, values = indices.reshape(1, -1), values.reshape(1, -1)
        if indices.ndim != 2 or values.shape != indices.shape:
            raise InvalidArgumentError(
                "indices and values must have the same shape (n, k), "
                f"got {indices.shape} and {values.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= h):
            # Checked here too: a cast to int32 would wrap huge values around.
            raise InvalidArgumentError(
                f"indices must lie in [0, {h}), found {indices.min()}..{indices.max()}")
        return (np.ascontiguousarray(indices, dtype=np.int32),
                np.ascontiguousarray(values, dtype=np.float32))
    # scipy sparse matrix
    if codes.ndim != 2 or codes.shape[1] != h:
        raise InvalidArgumentError(
            f"the sparse matrix of {what} must have {h} columns (latent_dim), "
            f"got shape {codes.shape}")
    csr = codes.tocsr()
    n = csr.shape[0]
    counts = np.diff(csr.indptr)
    if n and counts.min() != counts.max():
        raise InvalidArgumentError(
            f"every row of the sparse matrix of {what} must have the same number of "
            f"stored entries (k); found between {counts.min()} and {counts.max()}")
    k = int(counts[0]) if n else 0
    indices = np.ascontiguousarray(csr.indices[:n * k], dtype=np.int32).reshape(n, k)
    values = np.ascontiguousarray(csr.data[:n * k], dtype=np.float32).reshape(n, k)
    return indices, values


class SparseIndex:
    """Top-n retrieval over the k-sparse codes of a :class:`CompresSAE` model.

    Parameters
    ----------
    model : CompresSAE
        The model whose codes are stored (and, in reconstructed mode, whose
        decoder defines the similarity). The index keeps a reference to it.
    mode : {"sparse", "reconstructed"}, default "sparse"
        ``"sparse"``: ``score = s_q . s_y / (|s_q| |s_y|)``, through an
        inverted index. ``"reconstructed"``: cosine between decoded vectors
        ``x_hat = s @ decoder_w``, O(k) per item; a dense query is then used
        as it is (asymmetric search).
    storage : {"standard", "compact", "packed8", "packed4"}, default "standard"
        ``"standard"``: float32 values; 8 bytes per nonzero in reconstructed
        mode (int32 index, float32 value), 6 in sparse mode (posting lists
        keep 16-bit item ids relative to 8192-item tiles).
        ``"compact"``: half-precision values (and uint16 indices in
        reconstructed mode): 4 bytes per nonzero in both modes. Scores are
        then rounded accordingly.
        ``"packed8"`` / ``"packed4"``: values quantised as :meth:`SparseCodes.pack`
        does (8- or 4-bit levels, a float32 scale per item); 3 or 2.5 bytes
        per nonzero plus 4 per item. Exact for the quantised codes.

    Notes
    -----
    Items get the ids 0, 1, 2, ... in the order they are added. Results are
    ordered by score, then by lower id. The index owns memory in the C
    library: release it early with :meth:`close` or a ``with`` block.
    Searches release the GIL; searches and adds may come from several
    threads (adds wait for running searches and vice versa).

    If the model is trained (``fit``) after items were added, the stored
    codes no longer match it, and further adds and searches raise
    :class:`InvalidArgumentError`.

    Examples
    --------
    >>> index = SparseIndex(model, mode="sparse")
    >>> index.add(model.encode(catalogue))      # or index.add(catalogue)
    >>> scores, ids = index.search(queries, n=10)
    """

    def __init__(self, model: CompresSAE, mode: str = "sparse", storage: str = "standard"):
        if not isinstance(model, CompresSAE):
            raise TypeError(f"model must be a CompresSAE, got {type(model).__name__}")
        mode_value = _choice(mode, _MODES, "mode")
        storage_value = _choice(storage, _STORAGES, "storage")
        out = _ffi.csae_index_p()
        model._handle.call(_ffi.csae_index_create, mode_value, storage_value, ctypes.byref(out))
        self._init(out.value, model)

    def _init(self, pointer: int, model: CompresSAE) -> None:
        self._handle = IndexHandle(pointer)
        self._model = model
        self._d, self._h = model.input_dim, model.latent_dim
        mode, storage = ctypes.c_int32(), ctypes.c_int32()
        self._handle.call(_ffi.csae_index_get_info, None, None, None,
                          ctypes.byref(mode), ctypes.byref(storage))
        self._mode, self._storage = _MODE_NAMES[mode.value], _STORAGE_NAMES[storage.value]

    # ------------------------------------------------------------ files

    def save(self, path) -> None:
        """Save the index (codes, mode, storage, the model's fingerprint).

        The file (safetensors) is written under a temporary name and renamed
        into place. The model is not included: save it separately.

        Parameters
        ----------
        path : str or os.PathLike
        """
        self._handle.call(_ffi.csae_index_save, _path(path))

    @classmethod
    def load(cls, path, model: CompresSAE) -> "SparseIndex":
        """Load an index written by :meth:`save`.

        Parameters
        ----------
        path : str or os.PathLike
        model : CompresSAE
            The model the index was built with (same shape and weights, e.g.
            the model saved alongside and loaded with
            :meth:`CompresSAE.load`).

        Returns
        -------
        SparseIndex

        Raises
        ------
        InvalidArgumentError
            ``model`` is not the model the index was built with.
        FileError, FormatError
            The file cannot be read or is not an index file.
        """
        if not isinstance(model, CompresSAE):
            raise TypeError(f"model must be a CompresSAE, got {type(model).__name__}")
        path = _path(path)
        out = _ffi.csae_index_p()
        model._handle.call(lambda m: _ffi.csae_index_load(path, m, ctypes.byref(out)))
        index = cls.__new__(cls)
        index._init(out.value, model)
        return index

    # ------------------------------------------------------------ adding

    def add(self, items, *, num_threads: int = 0) -> None:
        """Add items; they get the next ids (``len(self)``, ``len(self) + 1``, ...).

        Parameters
        ----------
        items : SparseCodes, PackedCodes, (indices, values) tuple, scipy sparse matrix, or array_like
            Codes of the model (``k`` nonzeros per row, no latent twice in a
            row; a scipy matrix needs the same number of stored entries in
            every row), or dense vectors of shape ``(n, input_dim)`` (or
            ``(input_dim,)`` for one), which are encoded with the model:
            ``model.encode(X, refit=True)`` in reconstructed mode (values refitted
            by least squares, which rank better by decoded cosine),
            ``model.encode(X)`` in sparse mode. The first add fixes ``k``;
            later codes must have the same ``k``.
        num_threads : int, default 0
            Worker threads encoding dense items, 0 for the default
            (:func:`set_num_threads`); codes are added on the calling thread.

        Raises
        ------
        InvalidArgumentError
            Wrong shape or dimension, different ``k``, an index outside
            ``[0, latent_dim)`` or repeated in a row, NaN/Inf, a zero dense
            row, or a model trained since the first add.
        """
        num_threads = _threads(num_threads)
        from .packed import PackedCodes
        if isinstance(items, PackedCodes):
            items = items.unpack()
        if _is_codes(items):
            indices, values = _code_arrays(items, self._h, "codes")
            n, k = indices.shape
            rows = max(1, _ADD_CODES_CHUNK_ENTRIES // max(1, k))
            self._add_chunks(n, rows, lambda a, b: self._handle.call(
                _ffi.csae_index_add_codes, _ffi.i32_ptr(indices[a:b]),
                _ffi.f32_ptr(values[a:b]), b - a, k))
        else:
            source = RowSource(items, self._d, name="items")
            model = self._model
            k = self.k or model.k
            rows = encode_chunk_rows(self._d, self._h, k, self._mode == "reconstructed",
                                     num_threads or _ffi.csae_get_num_threads())

            def add_dense(a, b):
                X = source.chunk(a, b)
                self._handle.call(_ffi.csae_index_add_dense, _ffi.f32_ptr(X), b - a, X.shape[1],
                                  num_threads)
                source.done(b)

            self._add_chunks(source.rows, rows, add_dense)

    def _add_chunks(self, n: int, rows: int, add) -> None:
        """``add(start, stop)`` for consecutive chunks of ``rows`` rows;
        Ctrl-C stops between chunks with the earlier chunks added."""
        with InterruptGuard() as guard:
            for start in range(0, n, rows):
                stop = min(n, start + rows)
                try:
                    add(start, stop)
                except InvalidArgumentError as exc:
                    raise offset_rows(exc, start) from None
                if guard.pending and stop < n:
                    try:
                        guard.check()
                    except KeyboardInterrupt as exc:
                        exc.add_note(f"SparseIndex.add was interrupted after {stop} of {n} rows: "
                                     f"the index holds the rows added before (len = {len(self)})")
                        raise

    # ------------------------------------------------------------ search

    def search(self, queries, n: int = 100, num_threads: int = 0,
               query_k: int | None = None,
               candidates: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` best items for each query.

        Parameters
        ----------
        queries : SparseCodes, (indices, values) tuple, scipy sparse matrix, or array_like
            Sparse queries (codes of the model; ``k`` may differ from the
            index's; reconstructed mode decodes them), or dense queries of
            shape ``(q, input_dim)`` (``(input_dim,)`` for one). Dense
            queries are encoded with the model in sparse mode (with
            ``query_k`` nonzeros) and used as they are in reconstructed mode
            (asymmetric search).
        n : int, default 100
            Results per query, ``>= 1``.
        num_threads : int, default 0
            Worker threads; 0 uses the default (:func:`set_num_threads`).
        query_k : int, optional
            Sparse mode, dense queries: nonzeros of the query codes,
            ``1 <= query_k <= latent_dim``. The items keep their ``k``; a
            longer query code keeps more of the query's direction. Default
            ``min(latent_dim, 4 * k)``: the top-4k code, which the training
            objective also reconstructs from (on the shared MiniLM data at
            k = 32, Recall@100 0.663 against 0.615 with ``query_k=k``, for
            about twice the search time). ``query_k=k`` is the symmetric
            cosine between codes of docs/maths.md. Ignored in reconstructed mode.
        candidates : int, optional
            Reconstructed mode: ``None`` (the default) scores every item,
            exactly. A count ``>= 1`` first finds that many candidates (at
            least ``n``) through posting lists of the stored codes, reading
            only the lists of the ``2 k`` latents where the query's
            projection onto the decoder is largest, then scores the
            candidates exactly, in O(k) each: much faster on a large index,
            and an item outside the candidates is missed (docs/performance.md
            measures the trade). The lists are built at the first such search
            and add about as many bytes again as the codes (:attr:`nbytes`).
            Scores of the items returned are exact. Not allowed in sparse
            mode, which is exact and already reads only posting lists.

        Returns
        -------
        scores : numpy.ndarray of float32, shape (q, min(n, len(index)))
            Cosine similarities, best first. No padding: an index of fewer
            than ``n`` items gives every item, an empty index ``(q, 0)``
            arrays, and a large ``n`` allocates nothing beyond the items.
        ids : numpy.ndarray of int64, shape (q, min(n, len(index)))
            Item ids. Equal scores are ordered by id.

        Raises
        ------
        InvalidArgumentError
            ``n < 1``, wrong dimension, NaN/Inf or a zero dense query, bad
            codes, or a model trained since the items were added.
        """
        n = _size(n, "n")
        num_threads = _threads(num_threads)
        query_k = 0 if query_k is None else _size(query_k, "query_k")
        candidates = 0 if candidates is None else _size(candidates, "candidates")
        if candidates and self._mode != "reconstructed":
            raise InvalidArgumentError(
                "candidates applies to reconstructed mode, whose exhaustive search it "
                "shortens; sparse mode already reads only the query's posting lists")
        sparse = _is_codes(queries)
        if query_k and sparse:
            raise InvalidArgumentError(
                "query_k applies to dense queries, which the index encodes; "
                "codes are searched with the nonzeros they have")
        if sparse:
            indices, values = _code_arrays(queries, self._h, "queries")
            nq, k = indices.shape
        else:
            source = RowSource(queries, self._d, name="queries")
            nq = source.rows
        count, item_k, _ = self._info()
        # Columns: the items there are (items only get added meanwhile, so
        # the library finds at least these); one for an empty index, whose
        # queries the library still checks, then no column is kept.
        columns = max(1, min(n, count))
        params = _ffi.csae_search_default_params()
        params.n = columns
        params.query_k = query_k
        params.candidates = candidates
        params.num_threads = num_threads
        scores = empty((nq, columns), np.float32, "the search scores")
        ids = empty((nq, columns), np.int64, "the search ids")
        kept = min(n, count)
        if nq == 0:
            return scores[:, :kept], ids[:, :kept]
        workers = num_threads or _ffi.csae_get_num_threads()
        # A query costs its encoding (sparse mode, dense queries: d h) plus
        # scoring the items (about k operations each) and keeping the n best.
        # With candidates, the items cost a scan and the candidates k each.
        scored = min(max(candidates, columns), count) if candidates else count
        per_query = (count if candidates else 0) + scored * max(1, item_k) + columns
        if not sparse:
            per_query += (self._d + 8) * self._h
        rows = max(1, CHUNK_WORK // per_query) * max(1, workers)
        if self._mode == "reconstructed" and rows > _QUERY_BLOCK:
            # The library projects queries onto the decoder 64 at a time.
            rows -= rows % _QUERY_BLOCK
        with InterruptGuard() as guard:
            for start in range(0, nq, rows):
                stop = min(nq, start + rows)
                out_scores, out_ids = scores[start:stop], ids[start:stop]
                found = ctypes.c_int64()
                try:
                    if sparse:
                        self._handle.call(
                            _ffi.csae_index_search_codes, _ffi.i32_ptr(indices[start:stop]),
                            _ffi.f32_ptr(values[start:stop]), stop - start, k, ctypes.byref(params),
                            _ffi.f32_ptr(out_scores), _ffi.i64_ptr(out_ids), out_ids.size,
                            ctypes.byref(found))
                    else:
                        X = source.chunk(start, stop)
                        self._handle.call(
                            _ffi.csae_index_search_dense, _ffi.f32_ptr(X), stop - start,
                            X.shape[1], ctypes.byref(params), _ffi.f32_ptr(out_scores),
                            _ffi.i64_ptr(out_ids), out_ids.size, ctypes.byref(found))
                        source.done(stop)
                except InvalidArgumentError as exc:
                    raise offset_rows(exc, start) from None
                kept = min(kept, found.value)
                guard.check()
        if kept < columns:
            return np.ascontiguousarray(scores[:, :kept]), np.ascontiguousarray(ids[:, :kept])
        return scores, ids

    # ---------------------------------------------------------- attributes

    def _info(self) -> tuple[int, int, int]:
        count, k, nbytes = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        self._handle.call(_ffi.csae_index_get_info, ctypes.byref(count), ctypes.byref(k),
                          ctypes.byref(nbytes), None, None)
        return count.value, k.value, nbytes.value

    def __len__(self) -> int:
        """Number of items."""
        return self._info()[0]

    @property
    def k(self) -> int | None:
        """Nonzeros per stored code (``None`` until the first add)."""
        return self._info()[1] or None

    @property
    def nbytes(self) -> int:
        """Bytes held by the stored codes and the index structure."""
        return self._info()[2]

    @property
    def mode(self) -> str:
        """``"sparse"`` or ``"reconstructed"``."""
        return self._mode

    @property
    def storage(self) -> str:
        """``"standard"``, ``"compact"``, ``"packed8"`` or ``"packed4"``."""
        return self._storage

    @property
    def model(self) -> CompresSAE:
        """The model the index was built with."""
        return self._model

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Free the C index. Further calls raise :class:`InvalidHandleError`."""
        self._handle.close()

    def __enter__(self) -> "SparseIndex":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __reduce__(self):
        # Pickles as the model plus the bytes of the index file (what save
        # writes), so an index can be shipped to workers (Spark, Ray,
        # multiprocessing) and is rebuilt there without re-adding items.
        import tempfile
        with tempfile.TemporaryDirectory(prefix="compressae-index-") as directory:
            path = os.path.join(directory, "index.safetensors")
            self.save(path)
            with open(path, "rb") as file:
                data = file.read()
        return (_index_from_bytes, (self._model, data))

    def __repr__(self) -> str:
        if self.closed:
            return f"SparseIndex(mode={self._mode!r}, storage={self._storage!r}, closed)"
        count, k, _ = self._info()
        return (f"SparseIndex(mode={self._mode!r}, storage={self._storage!r}, "
                f"n={count}, k={k or None})")


def _index_from_bytes(model: CompresSAE, data: bytes) -> SparseIndex:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="compressae-index-") as directory:
        path = os.path.join(directory, "index.safetensors")
        with open(path, "wb") as file:
            file.write(data)
        return SparseIndex.load(path, model)
