"""Codes in the formats sparse-vector engines take: :mod:`compressae.export`.

Pure NumPy: no engine client is imported. Every payload here is meant to be
scored by a **dot product** (the one similarity all these engines share), so
the cosine of :class:`~compressae.SparseIndex` is kept by L2-normalising rows
first (``normalize=True``, the default).

Signs. About half of all code values are negative. Qdrant and pgvector
store signed values, so their payloads are the codes as they are and their
top-n is the index's top-n. Milvus ``SPARSE_FLOAT_VECTOR`` (items *and*
queries), Elasticsearch ``sparse_vector`` / OpenSearch ``rank_features``
(positive weights only) need non-negative values: :func:`sign_split` puts
the positive part of latent ``i`` on ``i`` and the magnitude of its negative
part on ``h + i`` (``2 h`` latents, the same ``k`` entries and the same L2
norm). Against split items,

- the query :func:`split_query` ``[q, -q]`` (``2 k`` entries, signed) gives
  ``[q, -q] . [y+, y-] = q . y`` exactly, for engines that take a signed
  query against non-negative items;
- the split query ``[q+, q-]`` (all an engine that refuses negative query
  weights can take) gives ``(q . y + |q| . |y|) / 2``: items whose
  latents overlap the query's with the opposite sign score too high. Its
  measured recall cost is in the README ("Where codes go") and
  ``benchmarks/sign_split.py``.

Modes. ``"sparse"`` (cosine between codes) uses the codes: pass them to the
engine functions. ``"reconstructed"`` (cosine between the decoded vectors,
the query dense) is also a dot product over the latents:
``q . (s @ W_dec) / |s @ W_dec| = (W_dec q) . s / |s @ W_dec|``; build the
item rows with :func:`reconstructed_items` and the queries (``h`` nonzeros)
with :func:`reconstructed_queries`, and pass both with ``normalize=False``.
"""

from __future__ import annotations

import numpy as np

from ._args import _size
from .errors import InvalidArgumentError
from .model import CompresSAE, SparseCodes, _float_matrix

__all__ = [
    "sign_split",
    "split_query",
    "normalize_rows",
    "reconstructed_items",
    "reconstructed_queries",
    "to_qdrant",
    "to_milvus",
    "to_pgvector",
    "to_sparse_vector_documents",
    "sparse_vector_mapping",
    "sparse_vector_query",
    "to_torch",
]

# Smallest positive weight Lucene's feature fields accept (Float.MIN_NORMAL):
# smaller (and zero) entries are left out of Elasticsearch/OpenSearch payloads.
_FLOAT32_MIN_NORMAL = float(np.finfo(np.float32).tiny)


def _codes(codes) -> SparseCodes:
    if isinstance(codes, SparseCodes):
        return codes
    if isinstance(codes, tuple) and len(codes) == 3:
        return SparseCodes(*codes)
    raise TypeError(
        "expected SparseCodes (or an (indices, values, dim) tuple), "
        f"got {type(codes).__name__}")


def _check_unique(codes: SparseCodes) -> None:
    # Engines reject (or silently merge) a latent given twice in one row;
    # codes made by a model never have one, hand-made codes might.
    if codes.k > 1 and len(codes):
        ordered = np.sort(codes.indices, axis=1)
        repeats = np.flatnonzero((ordered[:, 1:] == ordered[:, :-1]).any(axis=1))
        if repeats.size:
            raise InvalidArgumentError(
                f"row {int(repeats[0])} of the codes holds a latent twice; "
                "engines need each latent at most once per row")


def _check_finite(codes: SparseCodes) -> None:
    if not np.isfinite(codes.values).all():
        row = int(np.flatnonzero(~np.isfinite(codes.values).all(axis=1))[0])
        raise InvalidArgumentError(f"row {row} of the codes has a NaN or infinite value")


# ---------------------------------------------------------------- transforms

def sign_split(codes) -> SparseCodes:
    """Non-negative codes over ``2 h`` latents with the same norms and dot
    products between split items.

    Entry ``(i, v)`` becomes ``(i, v)`` when ``v >= 0`` and ``(h + i, -v)``
    when ``v < 0``; rows keep their ``k`` entries, their order and their L2
    norm. Between two split rows the dot product is ``y+ . z+ + y- . z-``
    (the agreeing-sign part of ``y . z``); against :func:`split_query` it is
    exactly ``q . y``.

    Parameters
    ----------
    codes : SparseCodes

    Returns
    -------
    SparseCodes
        ``dim = 2 * codes.dim``, all values ``>= 0``.
    """
    codes = _codes(codes)
    negative = codes.values < 0
    indices = np.where(negative, codes.indices + codes.dim, codes.indices).astype(np.int32)
    values = np.abs(codes.values)
    return SparseCodes._wrap(indices, values, 2 * codes.dim)


def split_query(codes) -> SparseCodes:
    """The exact query for :func:`sign_split` items: ``[q, -q]`` over ``2 h`` latents.

    ``split_query(q) . sign_split(y) = q . y`` for every pair of rows, so an
    engine that takes signed query weights against non-negative items ranks
    exactly as the signed codes. The query has ``2 k`` entries (value ``q_i``
    on ``i`` and ``-q_i`` on ``h + i``) and norm ``sqrt(2) |q|`` (the same
    factor for every item, so rankings are unchanged).

    Parameters
    ----------
    codes : SparseCodes

    Returns
    -------
    SparseCodes
        ``dim = 2 * codes.dim``, ``k = 2 * codes.k``, signed.
    """
    codes = _codes(codes)
    indices = np.concatenate([codes.indices, codes.indices + codes.dim], axis=1)
    values = np.concatenate([codes.values, -codes.values], axis=1)
    return SparseCodes._wrap(indices.astype(np.int32), values.astype(np.float32), 2 * codes.dim)


def normalize_rows(codes) -> SparseCodes:
    """Codes with every row scaled to unit L2 norm (all-zero rows left as they are).

    Dot products between normalised rows are the cosines the sparse index
    ranks by.
    """
    codes = _codes(codes)
    norms = np.sqrt(np.einsum("ij,ij->i", codes.values.astype(np.float64),
                              codes.values.astype(np.float64)))
    scale = np.divide(1.0, norms, out=np.ones_like(norms), where=norms > 0)
    values = (codes.values * scale[:, None]).astype(np.float32)
    return SparseCodes._wrap(codes.indices, values, codes.dim)


def reconstructed_items(model: CompresSAE, codes) -> SparseCodes:
    """Item rows for reconstructed-mode search by dot product: ``s / |s @ W_dec|``.

    With :func:`reconstructed_queries`, the engine's dot product is the
    cosine between the dense query and the decoded item, the score of
    ``SparseIndex(model, mode="reconstructed")`` for dense queries. Items
    are best encoded with ``model.encode(X, refit=True)`` (what that index
    stores). Export the result with ``normalize=False``.
    """
    if not isinstance(model, CompresSAE):
        raise TypeError(f"model must be a CompresSAE, got {type(model).__name__}")
    codes = _codes(codes)
    decoded = model.decode(codes).astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", decoded, decoded))
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    values = (codes.values * scale[:, None]).astype(np.float32)
    return SparseCodes._wrap(codes.indices, values, codes.dim)


def reconstructed_queries(model: CompresSAE, X, n_nonzero: int | None = None) -> SparseCodes:
    """Query rows for reconstructed-mode search: ``W_dec @ (x / |x|)`` over the ``h`` latents.

    Parameters
    ----------
    model : CompresSAE
    X : array_like, shape (q, input_dim) or (input_dim,)
        Dense queries (finite, nonzero rows).
    n_nonzero : int, optional
        Keep only the ``n_nonzero`` entries of largest magnitude (the score
        is then approximate; engines with a cap on query terms need it).
        Default: all ``h`` (exact).

    Returns
    -------
    SparseCodes
        Rows of ``n_nonzero`` (default ``h``) entries, by decreasing
        magnitude; export them with ``normalize=False``.
    """
    if not isinstance(model, CompresSAE):
        raise TypeError(f"model must be a CompresSAE, got {type(model).__name__}")
    X = _float_matrix(X, model.input_dim)
    norms = np.linalg.norm(X.astype(np.float64), axis=1)
    if np.any(~np.isfinite(norms)) or np.any(norms == 0):
        raise InvalidArgumentError("queries must be finite, nonzero rows")
    h = model.latent_dim
    m = h if n_nonzero is None else _size(n_nonzero, "n_nonzero")
    if m > h:
        raise InvalidArgumentError(f"n_nonzero = {m} exceeds latent_dim = {h}")
    projected = ((X / norms[:, None].astype(np.float32)) @ model.decoder_w.T).astype(np.float32)
    if m < h:
        top = np.argpartition(-np.abs(projected), m - 1, axis=1)[:, :m]
    else:
        top = np.broadcast_to(np.arange(h), projected.shape)
    values = np.take_along_axis(projected, top, axis=1)
    order = np.argsort(-np.abs(values), axis=1, kind="stable")
    indices = np.take_along_axis(np.asarray(top), order, axis=1).astype(np.int32)
    values = np.take_along_axis(values, order, axis=1)
    return SparseCodes._wrap(np.ascontiguousarray(indices), np.ascontiguousarray(values), h)


def _prepare(codes, normalize: bool, nonnegative: bool) -> SparseCodes:
    codes = _codes(codes)
    _check_unique(codes)
    _check_finite(codes)
    if normalize:
        codes = normalize_rows(codes)
    if nonnegative:
        codes = sign_split(codes)
    return codes


def _rows(codes: SparseCodes, keep_zeros: bool, minimum: float = 0.0):
    """Per row: (indices, values) as Python lists, sorted by index.

    Zero entries (and, for positive-only engines, values below ``minimum``)
    are dropped unless ``keep_zeros``.
    """
    order = np.argsort(codes.indices, axis=1, kind="stable")
    indices = np.take_along_axis(codes.indices, order, axis=1)
    values = np.take_along_axis(codes.values, order, axis=1)
    if keep_zeros:
        return zip(indices.tolist(), values.tolist())
    keep = np.abs(values) > minimum if minimum else values != 0
    if keep.all():
        return zip(indices.tolist(), values.tolist())
    return ((i[m].tolist(), v[m].tolist()) for i, v, m in zip(indices, values, keep))


# ------------------------------------------------------------------ engines

def to_qdrant(codes, normalize: bool = True) -> list:
    """Qdrant sparse vectors: one ``{"indices": [...], "values": [...]}`` per row.

    Each dict is what ``qdrant_client.models.SparseVector(**row)`` takes (and
    may be passed as it is wherever qdrant-client expects a SparseVector).
    Qdrant keeps signed values and scores sparse vectors by dot product:
    with ``normalize=True`` (unit rows) its ranking is the sparse index's
    cosine ranking; use the same call for items and queries.

    Parameters
    ----------
    codes : SparseCodes
    normalize : bool, default True
        L2-normalise every row (cosine semantics).

    Returns
    -------
    list of dict
    """
    codes = _prepare(codes, normalize, nonnegative=False)
    return [{"indices": i, "values": v} for i, v in _rows(codes, keep_zeros=True)]


def to_milvus(codes, normalize: bool = True) -> list:
    """Milvus ``SPARSE_FLOAT_VECTOR`` rows: one ``{index: value}`` dict per row, non-negative.

    Milvus refuses negative weights in stored vectors and in queries, so the
    rows are :func:`sign_split` (``2 h`` latents). Use the same call for
    queries (metric ``"IP"``): the engine then scores
    ``(q . y + |q| . |y|) / 2`` instead of ``q . y`` (see the module notes
    for the measured recall cost; rerank a longer candidate list with
    :class:`~compressae.SparseIndex` for exact results).

    Parameters
    ----------
    codes : SparseCodes
    normalize : bool, default True
        L2-normalise every row before the split (the split keeps the norm).

    Returns
    -------
    list of dict of int to float
    """
    codes = _prepare(codes, normalize, nonnegative=True)
    return [dict(zip(i, v)) for i, v in _rows(codes, keep_zeros=False)]


def to_pgvector(codes, normalize: bool = True) -> list:
    """pgvector ``sparsevec`` literals: ``'{i:v,...}/dim'`` with 1-based indices.

    Values are written with 9 significant digits (float32 round-trips
    exactly) and indices in increasing order; zero entries are left out (as
    pgvector does). pgvector keeps signed values: order by ``<=>`` (cosine
    distance) or, for unit rows, ``<#>`` (negative inner product), both
    rank like the sparse index.

    Parameters
    ----------
    codes : SparseCodes
    normalize : bool, default True

    Returns
    -------
    list of str
    """
    codes = _prepare(codes, normalize, nonnegative=False)
    tail = f"}}/{codes.dim}"
    return ["{" + ",".join(f"{a + 1}:{b:.9g}" for a, b in zip(i, v)) + tail
            for i, v in _rows(codes, keep_zeros=False)]


def to_sparse_vector_documents(codes, field: str = "codes", normalize: bool = True) -> list:
    """Elasticsearch ``sparse_vector`` / OpenSearch ``rank_features`` documents.

    One ``{field: {"<latent>": weight, ...}}`` document per row: string keys
    and strictly positive weights (the rows are :func:`sign_split`; zero and
    subnormal weights are left out, as those fields refuse them). Both
    engines score a query by the dot product of the weights (Elasticsearch
    keeps 9 significant bits of each stored weight, a relative error of
    about 0.4%).

    Parameters
    ----------
    codes : SparseCodes
    field : str, default "codes"
        Name of the ``sparse_vector`` field (see :func:`sparse_vector_mapping`).
    normalize : bool, default True

    Returns
    -------
    list of dict
    """
    field = _field(field)
    codes = _prepare(codes, normalize, nonnegative=True)
    return [{field: {str(a): b for a, b in zip(i, v)}}
            for i, v in _rows(codes, keep_zeros=False, minimum=_FLOAT32_MIN_NORMAL)]


def sparse_vector_mapping(field: str = "codes", engine: str = "elasticsearch") -> dict:
    """The index-creation body (``mappings``) for :func:`to_sparse_vector_documents`.

    ``engine="elasticsearch"``: a ``sparse_vector`` field;
    ``engine="opensearch"``: a ``rank_features`` field (what OpenSearch's
    ``neural_sparse`` query searches).
    """
    field = _field(field)
    kinds = {"elasticsearch": "sparse_vector", "opensearch": "rank_features"}
    if engine not in kinds:
        raise InvalidArgumentError(f"engine must be 'elasticsearch' or 'opensearch', got {engine!r}")
    return {"mappings": {"properties": {field: {"type": kinds[engine]}}}}


def sparse_vector_query(codes, field: str = "codes", size: int = 10, normalize: bool = True,
                        engine: str = "elasticsearch") -> list:
    """Search bodies for :func:`to_sparse_vector_documents` items, one per query row.

    Elasticsearch: ``{"size": n, "query": {"sparse_vector": {"field": f,
    "query_vector": {...}, "prune": false}}}`` (pruning off: it drops query
    terms and the ranking would no longer be the dot product).
    OpenSearch: ``{"size": n, "query": {"neural_sparse": {f: {"query_tokens":
    {...}}}}}``. Query weights must be positive too, so the query is the
    sign split ``[q+, q-]``, which scores ``(q . y + |q| . |y|) / 2``.

    Returns
    -------
    list of dict
    """
    field = _field(field)
    size = _size(size, "size")
    if engine not in ("elasticsearch", "opensearch"):
        raise InvalidArgumentError(f"engine must be 'elasticsearch' or 'opensearch', got {engine!r}")
    bodies = []
    for doc in to_sparse_vector_documents(codes, field, normalize):
        weights = doc[field]
        if engine == "elasticsearch":
            query = {"sparse_vector": {"field": field, "query_vector": weights, "prune": False}}
        else:
            query = {"neural_sparse": {field: {"query_tokens": weights}}}
        bodies.append({"size": size, "query": query})
    return bodies


def _field(field) -> str:
    if not isinstance(field, str) or not field:
        raise InvalidArgumentError(f"field must be a non-empty field name, got {field!r}")
    return field


# -------------------------------------------------------------------- torch

def to_torch(codes, layout: str = "coo"):
    """The codes as a torch sparse tensor of shape ``(n, dim)``, float32.

    Parameters
    ----------
    codes : SparseCodes
    layout : {"coo", "csr"}, default "coo"
        ``"coo"``: a coalesced ``torch.sparse_coo_tensor`` (int64 indices);
        ``"csr"``: a ``torch.sparse_csr_tensor`` with sorted column indices.
        Values of a latent repeated in a row add up (as in ``toarray``).

    Returns
    -------
    torch.Tensor
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError("SparseCodes.to_torch() needs PyTorch (pip install torch)") from exc
    codes = _codes(codes)
    if layout not in ("coo", "csr"):
        raise InvalidArgumentError(f"layout must be 'coo' or 'csr', got {layout!r}")
    n, k = codes.indices.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    coordinates = np.stack([rows, codes.indices.ravel().astype(np.int64)])
    tensor = torch.sparse_coo_tensor(torch.from_numpy(coordinates),
                                     torch.from_numpy(codes.values.ravel().copy()),
                                     size=(n, codes.dim), dtype=torch.float32,
                                     check_invariants=False).coalesce()
    return tensor if layout == "coo" else tensor.to_sparse_csr()


def to_sentence_transformers(model: CompresSAE, front=None, nonnegative: bool = False, k: int | None = None):
    """The encoder side of ``model`` as a sentence-transformers ``SparseEncoder``.

    ``SparseEncoder.encode(inputs)`` then returns ``model.encode``'s codes
    exactly (the last module calls this library), as dense rows of
    ``latent_dim`` values (``nonnegative=True``: the sign split,
    :func:`sign_split`, over ``2 * latent_dim`` non-negative values, for
    engines and sentence-transformers' sparse tooling that expect them).
    ``model.save``'s file travels with ``SparseEncoder.save``, and
    ``SparseEncoder(path)`` loads it back (with compressae installed).

    Parameters
    ----------
    model : CompresSAE
    front : module or list of modules, optional
        What turns inputs into the dense embedding the model was trained on:
        sentence-transformers modules ending in a ``sentence_embedding`` of
        ``input_dim`` values (e.g. ``Transformer`` and ``Pooling``, or
        ``StaticEmbedding``) for texts. Default: an input module that takes
        the embeddings themselves (one 1-D array or tensor per input).
    nonnegative : bool, default False
    k : int, optional
        Nonzeros per code (default the model's); ``encode(...,
        max_active_dims=m)`` lowers it per call.

    Needs ``sentence-transformers >= 5`` (and PyTorch). Inference only: the
    module has no gradient. A sentence-transformers CSR model
    (``SparseAutoEncoder``) cannot be imported as a compressae model: it
    selects the k largest *signed* pre-activations and applies ReLU, of
    ``(x - pre_bias) W^T + b`` without normalising ``x``, whereas compressae
    selects the k largest ``|p|`` of ``normalize(x) W + b`` and keeps their
    signs; the pre-bias folds into ``b`` (``b - W pre_bias``) and the
    normalisation only matters through ``b`` (exact for unit-norm inputs),
    but the selection rule differs, so no compressae model gives its codes.
    """
    from ._sentence_transformers import build

    if not isinstance(model, CompresSAE):
        raise TypeError(f"model must be a CompresSAE, got {type(model).__name__}")
    if k is not None:
        k = _size(k, "k")
        if k > model.k:
            raise InvalidArgumentError(f"k = {k} is more than the model's k = {model.k}")
    return build(model, front=front, nonnegative=nonnegative, k=k)
