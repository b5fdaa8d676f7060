"""Evaluation helpers: Recall@N and exact (brute-force) dense search.

Pure numpy; nothing here calls the C library. ``exact_search`` gives the
ground truth that :func:`recall_at_n` compares a compressed search against
(docs/maths.md, "Evaluation metric").
"""

from __future__ import annotations


import numpy as np

from ._args import _size
from .errors import InvalidArgumentError

__all__ = ["recall_at_n", "exact_search"]


def _id_matrix(ids, name: str) -> np.ndarray:
    array = np.asarray(ids)
    if array.dtype.kind not in "iu":
        raise InvalidArgumentError(f"{name} must be an integer array, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidArgumentError(f"{name} must be a 2-D array [q, n], got shape {array.shape}")
    return array.astype(np.int64, copy=False)


def recall_at_n(found_ids, true_ids, n: int | None = None) -> float:
    """Recall@n: the mean fraction of each query's true top-n that was found.

    For every query, ``|set(found_ids[i, :n]) & set(true_ids[i, :n])| / n``,
    averaged over queries. Negative ids (the ``-1`` padding of
    :meth:`SparseIndex.search` and :func:`exact_search`) are ignored: they
    never count as found. The denominator is always ``n``, so a query whose
    true list holds fewer than ``n`` real ids cannot reach 1.

    Parameters
    ----------
    found_ids : array_like of int, shape (q, m)
        Ids returned by the search under test, best first (only the first
        ``n`` columns are used; fewer than ``n`` columns count as misses).
        A 1-D array is one query.
    true_ids : array_like of int, shape (q, t)
        The exact neighbours, best first, ``t >= n``.
    n : int, optional
        Cut-off; defaults to ``t`` (``true_ids.shape[1]``).

    Returns
    -------
    float
        Recall@n in ``[0, 1]``.

    Examples
    --------
    >>> recall_at_n([[1, 2, 3]], [[3, 4, 1]])
    0.6666666666666666
    """
    found = _id_matrix(found_ids, "found_ids")
    true = _id_matrix(true_ids, "true_ids")
    if found.shape[0] != true.shape[0]:
        raise InvalidArgumentError(
            f"found_ids has {found.shape[0]} queries but true_ids has {true.shape[0]}")
    n = true.shape[1] if n is None else _size(n, "n")
    if n < 1:
        raise InvalidArgumentError("true_ids needs at least one column")
    if n > true.shape[1]:
        raise InvalidArgumentError(
            f"n = {n} exceeds the {true.shape[1]} true neighbours given per query")
    q = found.shape[0]
    if q == 0:
        raise InvalidArgumentError("recall needs at least one query")
    found, true = found[:, :n], true[:, :n]
    hits = 0
    # Vectorised set intersection per row: sort the true ids of each row,
    # then look every found id up in its own row with one searchsorted over
    # row-offset keys. Duplicated found ids count once.
    found = np.sort(found, axis=1)
    fresh = np.ones(found.shape, dtype=bool)
    fresh[:, 1:] = found[:, 1:] != found[:, :-1]
    valid = fresh & (found >= 0)
    true = np.sort(true, axis=1)
    true_valid = true >= 0
    lo = int(min(found.min(initial=0), true.min(initial=0)))
    span = int(max(found.max(initial=0), true.max(initial=0))) - lo + 1
    if span * q < 2**62:
        rows = np.arange(q, dtype=np.int64)[:, None] * span
        true_keys = np.where(true_valid, true - lo + rows, -1).ravel()
        true_keys = np.unique(true_keys[true_keys >= 0])
        found_keys = (found - lo + rows)[valid]
        position = np.searchsorted(true_keys, found_keys)
        position = np.minimum(position, max(true_keys.size - 1, 0))
        hits = int(np.count_nonzero(true_keys[position] == found_keys)) if true_keys.size else 0
    else:  # ids too large for row-offset keys: one set per row
        for i in range(q):
            hits += len(set(found[i][valid[i]].tolist()) & set(true[i][true_valid[i]].tolist()))
    return hits / (q * n)


def _top_n(scores: np.ndarray, ids: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the n best (score, id) pairs: higher score first, lower id on ties.

    ``scores`` is [r, c]; ``ids`` is [c] (shared by all rows) or [r, c].
    Exact on ties: every candidate equal to the n-th best score is
    considered, and the lowest ids among them are kept.
    """
    r, c = scores.shape
    m = min(n, c)
    out_scores = np.full((r, n), -np.inf, dtype=scores.dtype)
    out_ids = np.full((r, n), -1, dtype=np.int64)
    if r == 0 or m == 0:
        return out_scores, out_ids
    if c > m:
        # The m-th largest score of each row; all entries >= it are candidates.
        kth = np.partition(scores, c - m, axis=1)[:, c - m]
        rows, cols = np.nonzero(scores >= kth[:, None])
    else:
        rows, cols = np.divmod(np.arange(r * c), c)
    values = scores[rows, cols]
    cand_ids = ids[cols] if ids.ndim == 1 else ids[rows, cols]
    order = np.lexsort((cand_ids, -values, rows))
    rows, values, cand_ids = rows[order], values[order], cand_ids[order]
    starts = np.searchsorted(rows, np.arange(r))
    rank = np.arange(rows.size) - starts[rows]
    keep = rank < m
    out_scores[rows[keep], rank[keep]] = values[keep]
    out_ids[rows[keep], rank[keep]] = cand_ids[keep]
    return out_scores, out_ids


def _as_rows(x, name: str, dtype) -> np.ndarray:
    array = np.asarray(x)
    if array.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2:
        raise InvalidArgumentError(f"{name} must be a 2-D array, got shape {array.shape}")
    array = array.astype(dtype, copy=False)
    if not np.isfinite(array).all():
        bad = int(np.nonzero(~np.isfinite(array).all(axis=1))[0][0])
        raise InvalidArgumentError(f"{name} row {bad} holds NaN or Inf")
    return array


def exact_search(items, queries, n: int = 100, metric: str = "cosine",
                 batch_size: int = 1024, item_batch_size: int = 16384
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-n dense search by brute force (numpy).

    Scores every query against every item with ``Q @ X.T`` in blocks of
    ``batch_size`` queries by ``item_batch_size`` items, keeping a running
    top-n per query; memory stays bounded by one block of scores
    (``batch_size * item_batch_size`` values, a few times over), whatever
    the number of items.

    Parameters
    ----------
    items : array_like, shape (N, d)
        The catalogue.
    queries : array_like, shape (q, d) or (d,)
        A 1-D array is one query.
    n : int, default 100
        Results per query.
    metric : {"cosine", "ip"}, default "cosine"
        ``"cosine"`` normalises items and queries first (a zero row then
        scores 0 against everything); ``"ip"`` ranks by the raw inner
        product.
    batch_size : int, default 1024
        Queries per block.
    item_batch_size : int, default 16384
        Items per block.

    Returns
    -------
    scores : numpy.ndarray of float32, shape (q, n)
        Best first; ``-inf`` where ``N < n``.
    ids : numpy.ndarray of int64, shape (q, n)
        Row numbers in ``items``, ``-1`` as padding. Equal scores are
        ordered by lower id.

    Notes
    -----
    Products run in float32 (float64 when either input is float64), so the
    result is the exact ranking up to that precision.
    """
    n = _size(n, "n")
    batch_size = _size(batch_size, "batch_size")
    item_batch_size = _size(item_batch_size, "item_batch_size")
    if metric not in ("cosine", "ip"):
        raise InvalidArgumentError(f"metric must be 'cosine' or 'ip', got {metric!r}")
    dtype = np.float64 if np.float64 in (np.asarray(items).dtype, np.asarray(queries).dtype) \
        else np.float32
    X = _as_rows(items, "items", dtype)
    Q = _as_rows(queries, "queries", dtype)
    if X.shape[1] != Q.shape[1]:
        raise InvalidArgumentError(
            f"items have {X.shape[1]} columns but queries have {Q.shape[1]}")

    def normalised(rows: np.ndarray) -> np.ndarray:
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1)

    if metric == "cosine":
        Q = normalised(Q)
    scores = np.full((Q.shape[0], n), -np.inf, dtype=np.float32)
    ids = np.full((Q.shape[0], n), -1, dtype=np.int64)
    for q0 in range(0, Q.shape[0], batch_size):
        Qb = Q[q0:q0 + batch_size]
        best_s = np.full((Qb.shape[0], n), -np.inf, dtype=dtype)
        best_i = np.full((Qb.shape[0], n), -1, dtype=np.int64)
        for i0 in range(0, X.shape[0], item_batch_size):
            Xb = X[i0:i0 + item_batch_size]
            if metric == "cosine":
                Xb = normalised(Xb)
            block = Qb @ Xb.T
            s, i = _top_n(block, np.arange(i0, i0 + Xb.shape[0], dtype=np.int64), n)
            # Merge with the best so far: padding (-inf, -1) sorts last.
            merged_s = np.concatenate([best_s, s], axis=1)
            merged_i = np.concatenate([best_i, i], axis=1)
            merged_i_key = np.where(merged_i < 0, np.iinfo(np.int64).max, merged_i)
            best_s, best_i = _top_n(merged_s, merged_i_key, n)
            best_i[best_i == np.iinfo(np.int64).max] = -1
        scores[q0:q0 + Qb.shape[0]] = best_s
        ids[q0:q0 + Qb.shape[0]] = best_i
    return scores, ids
