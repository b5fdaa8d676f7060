"""compressae demo: compress real text embeddings and measure what is kept.

    scripts/demo            (installs the package if needed, then runs this)
    python examples/python/demo.py [--epochs N] [--latent-dim H] [--k K] ...

Data: the package's embedded slice of WordNet 3.0 synset texts embedded with
all-MiniLM-L6-v2 (10,000 x 384). 200 rows are held out as queries; the other
rows are the catalogue. A CompresSAE model (h = 4096 latents, k = 32) is
trained on the catalogue, then every number below is computed here:

- bytes/vector and compression factor (4 d / bytes, the paper's definition:
  one int32 index + one float32 value per nonzero);
- mean reconstruction cosine, cos(x, decode(encode(x))) (with refitted
  values for the reconstructed rows);
- Recall@100 against exact search: for each query, the fraction of its exact
  top-100 catalogue rows (cosine on the dense float32 vectors, numpy brute
  force) that a compressed search (compressae.SparseIndex) also returns in its
  top-100:
    sparse codes   cosine between sparse codes (s_q . s_y / |s_q| |s_y|), the
                   query's code with k nonzeros, and with 4k (what the index
                   does with a dense query; the items keep k)
    reconstructed  cosine between decoded vectors (x_hat_q . x_hat_y / ...),
                   codes with refitted values (encode(refit=True), what a
                   reconstructed index stores for dense rows)
    dense query    uncompressed query against decoded catalogue vectors
    compact        the same with float16 values and uint16 indices
  and, as a reference point of the same size, PCA to 64 float32 dims
  (fitted on the catalogue), searched by cosine. The library's results are
  checked against numpy brute force over the same codes.
"""
import argparse
import gzip
import importlib.resources
import inspect
import os
import sys
import time

import numpy as np

import compressae

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_DATA = os.path.join(HERE, "..", "..", "python", "compressae", "data")


def data_path(name: str):
    """Path of a file of the package's data folder: the installed package's
    copy first, then the checkout's (python/compressae/data), else None."""
    resource = importlib.resources.files("compressae") / "data" / name
    if isinstance(resource, os.PathLike) and resource.is_file():
        return os.fspath(resource)
    local = os.path.join(REPO_DATA, name)
    return local if os.path.isfile(local) else None


def load_texts():
    path = data_path("wordnet10k_texts.tsv.gz")
    if path is None:
        return None
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 3)[3] for line in f]


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def top_n(scores: np.ndarray, n: int) -> np.ndarray:
    """Row-wise indices of the n largest scores, best first."""
    part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f, t)) / truth.shape[1] for f, t in zip(found, truth)]))


def sparse_cosine_scores(q: compressae.SparseCodes, items: compressae.SparseCodes, h: int) -> np.ndarray:
    """cos(s_q, s_y) for all pairs, without materialising the items densely."""
    qd = np.zeros((len(q), h), dtype=np.float32)
    np.put_along_axis(qd, q.indices.astype(np.int64), q.values, axis=1)
    qd /= np.linalg.norm(qd, axis=1, keepdims=True)
    item_norm = np.linalg.norm(items.values, axis=1)
    scores = np.empty((len(q), len(items)), dtype=np.float32)
    chunk = 1000
    for start in range(0, len(items), chunk):
        idx = items.indices[start:start + chunk]
        val = items.values[start:start + chunk]
        # scores[q, y] = sum_j qd[q, idx[y, j]] * val[y, j]
        scores[:, start:start + chunk] = np.einsum("qyj,yj->qy", qd[:, idx], val)
    return scores / item_norm[None, :]


def main() -> int:
    ap = argparse.ArgumentParser(description="compressae demo on the embedded WordNet/MiniLM data")
    ap.add_argument("--latent-dim", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--epochs", type=int, help="most epochs (default: the library's, 100, with early stopping)")
    ap.add_argument("--batch-size", type=int, help="default: the library's, 4096")
    ap.add_argument("--lr", type=float, help="default: the library's, 1e-2")
    ap.add_argument("--reference", action="store_true",
                    help="the PyTorch reference's recipe (init and training) instead of the library's defaults")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args()
    t_start = time.perf_counter()

    path = data_path("wordnet10k_minilm384_f16.npy")
    if path is None:
        sys.exit("demo: the embedded dataset is missing (python/compressae/data)")
    X = np.load(path).astype(np.float32)
    n, d = X.shape
    texts = load_texts()
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(n)
    q_rows, item_rows = np.sort(perm[:args.queries]), np.sort(perm[args.queries:])
    Q, items = X[q_rows], X[item_rows]
    N = 100
    print(f"compressae {compressae.__version__}, library {compressae.library_version()}, "
          f"BLAS: {compressae.blas_name()}")
    print(f"data: WordNet 3.0 synsets embedded with all-MiniLM-L6-v2, {n} x {d} "
          f"({len(items)} catalogue rows, {len(Q)} held-out queries)")

    # Exact search on the dense vectors: the ground truth.
    truth = top_n(normalize(Q) @ normalize(items).T, N)

    # Train CompresSAE on the catalogue.
    model = compressae.CompresSAE(d, latent_dim=args.latent_dim, k=args.k, seed=args.seed,
                                  init="reference" if args.reference else "tied")
    fit = dict(compressae.REFERENCE_TRAINING, epochs=20) if args.reference else {}
    fit.update({name: value for name, value in (("epochs", args.epochs), ("batch_size", args.batch_size),
                                                ("learning_rate", args.lr)) if value is not None})
    print(f"training CompresSAE: h={args.latent_dim}, k={args.k}, "
          + ("the reference's recipe" if args.reference else "the library's default recipe")
          + (f" with {fit}" if fit else "") + " (compressae.CompresSAE.fit)")
    t0 = time.perf_counter()
    model.fit(items, seed=args.seed, progress=not args.no_progress, **fit)
    t_train = time.perf_counter() - t0
    hist, val = model.history_, model.validation_loss_
    max_epochs = fit.get("epochs", inspect.signature(compressae.CompresSAE.fit).parameters["epochs"].default)
    stopped = (f"{len(val)} epochs, " + ("stopped by the plateau rule; " if len(val) < max_epochs else "the most allowed; ")
               if len(val) else "")
    print(f"trained in {t_train:.1f} s ({stopped}{len(hist)} Adam steps); training loss {hist[0]:.4f} "
          f"(first step) -> {hist[-1]:.4f} (last step)"
          + (f", validation loss {val[-1]:.4f}" if len(val) else "")
          + f"; dead latents {model.dead_latents_[-1]:.1%}")

    t0 = time.perf_counter()
    item_codes = model.encode(items)
    q_codes = model.encode(Q)
    q_codes_4k = model.encode(Q, k=4 * args.k)              # what a sparse index makes of dense queries
    item_refit, q_refit = model.encode(items, refit=True), model.encode(Q, refit=True)
    t_encode = time.perf_counter() - t0
    items_hat, items_hat_refit = model.decode(item_codes), model.decode(item_refit)
    q_hat, q_hat_refit = model.decode(q_codes), model.decode(q_refit)
    alive = len(np.unique(item_codes.indices))

    cos_items = float(np.mean(np.sum(normalize(items) * normalize(items_hat), axis=1)))
    cos_items_refit = float(np.mean(np.sum(normalize(items) * normalize(items_hat_refit), axis=1)))
    cos_q = float(np.mean(np.sum(normalize(Q) * normalize(q_hat), axis=1)))

    # Compressed search with the library's SparseIndex (exact over the codes),
    # cross-checked against numpy brute force over the same codes.
    t0 = time.perf_counter()
    sparse_index = compressae.SparseIndex(model, mode="sparse")
    sparse_index.add(items)                                 # encoded with the encoder's values
    _, ids_sparse = sparse_index.search(q_codes, n=N)       # k-code queries
    _, ids_sparse4k = sparse_index.search(Q, n=N)           # dense queries, encoded with 4k nonzeros
    recon_index = compressae.SparseIndex(model, mode="reconstructed")
    recon_index.add(items)                                  # encoded with refitted values
    _, ids_recon = recon_index.search(q_refit, n=N)         # sparse queries, decoded
    _, ids_asym = recon_index.search(Q, n=N)                # dense queries, as they are
    compact_index = compressae.SparseIndex(model, mode="reconstructed", storage="compact")
    compact_index.add(items)
    _, ids_compact = compact_index.search(Q, n=N)
    t_search = time.perf_counter() - t0
    r_sparse, r_sparse4k = recall(ids_sparse, truth), recall(ids_sparse4k, truth)
    r_recon, r_asym, r_compact = recall(ids_recon, truth), recall(ids_asym, truth), recall(ids_compact, truth)

    checks = {
        "sparse": (r_sparse, recall(top_n(sparse_cosine_scores(q_codes, item_codes, args.latent_dim), N), truth)),
        "sparse, 4k-code queries": (
            r_sparse4k, recall(top_n(sparse_cosine_scores(q_codes_4k, item_codes, args.latent_dim), N), truth)),
        "reconstructed": (r_recon, recall(top_n(normalize(q_hat_refit) @ normalize(items_hat_refit).T, N), truth)),
        "dense query": (r_asym, recall(top_n(normalize(Q) @ normalize(items_hat_refit).T, N), truth)),
    }
    for name, (lib, ref) in checks.items():
        # Near-ties may order differently in float32; recall must agree closely.
        if abs(lib - ref) > 0.005:
            sys.exit(f"demo: {name} search: SparseIndex recall {lib:.4f} != numpy brute force {ref:.4f}")

    # Reference point of the same size: PCA to 64 float32 dims.
    pca_dims = 8 * args.k // 4
    mean = items.mean(axis=0)
    _, _, vt = np.linalg.svd(items - mean, full_matrices=False)
    proj = vt[:pca_dims].T
    items_p, q_p = (items - mean) @ proj, (Q - mean) @ proj
    r_pca = recall(top_n(normalize(q_p) @ normalize(items_p).T, N), truth)
    cos_pca = float(np.mean(np.sum(normalize(items) * normalize(items_p @ proj.T + mean), axis=1)))

    dense_bytes = 4 * d
    sae_bytes = 8 * args.k
    compact_bytes = compact_index.nbytes / len(items)
    print()
    print(f"Recall@{N} vs exact dense cosine search ({len(Q)} queries, {len(items)} items):")
    rows = [
        ("dense float32 (exact)", dense_bytes, 1.0, "1.000"),
        (f"CompresSAE k={args.k}: sparse codes", sae_bytes, cos_items, f"{r_sparse:.3f}"),
        (f"  same, queries with {4 * args.k} nonzeros", sae_bytes, cos_items, f"{r_sparse4k:.3f}"),
        (f"CompresSAE k={args.k}: reconstructed", sae_bytes, cos_items_refit, f"{r_recon:.3f}"),
        (f"CompresSAE k={args.k}: dense query", sae_bytes, cos_items_refit, f"{r_asym:.3f}"),
        (f"  same, compact storage (fp16+u16)", compact_bytes, cos_items_refit, f"{r_compact:.3f}"),
        (f"PCA {pca_dims} dims float32", 4 * pca_dims, cos_pca, f"{r_pca:.3f}"),
    ]
    print(f"  {'method':<36} {'bytes/vec':>9} {'factor':>7} {'recon cos':>9} {'Recall@100':>10}")
    for name, b, c, r in rows:
        print(f"  {name:<36} {b:>9.0f} {dense_bytes / b:>6.1f}x {c:>9.4f} {r:>10}")
    print(f"  (held-out queries: reconstruction cosine {cos_q:.4f}; "
          f"{alive} of {args.latent_dim} latents used by the catalogue codes)")
    print(f"  (bytes/vec: int32 index + float32 value per nonzero, factor = 4 d / bytes; compact: "
          f"index bytes / items; searches by compressae.SparseIndex, recall checked against numpy)")

    if texts is not None:
        qi = 0
        sparse_top = ids_sparse[qi, :3]
        print()
        print(f"query: {texts[q_rows[qi]]}")
        print("  exact top-3:")
        for r in truth[qi, :3]:
            print(f"    {texts[item_rows[r]][:100]}")
        print("  sparse-code top-3:")
        for r in sparse_top:
            print(f"    {texts[item_rows[r]][:100]}")

    print()
    print(f"timings: training {t_train:.1f} s, encoding {len(items) + len(Q)} rows {t_encode:.2f} s, "
          f"building 3 indexes + 5 x {len(Q)} searches {t_search:.2f} s, total {time.perf_counter() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
