"""compressae from Python, end to end (run by scripts/test).

    pip install ./python
    python examples/python/example.py

Fits a CompresSAE model on the embedded WordNet / MiniLM slice, encodes and
decodes held-out rows, reports the reconstruction cosine, saves and reloads
the model and shows how errors surface. Exits non-zero on any failure.
"""
import importlib.resources
import os
import sys
import tempfile

import numpy as np

import compressae


def load_embedded_dataset() -> np.ndarray:
    """The package's 10,000 x 384 float16 embeddings, as float32."""
    path = importlib.resources.files("compressae") / "data" / "wordnet10k_minilm384_f16.npy"
    with importlib.resources.as_file(path) as p:
        return np.load(p).astype(np.float32)


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    num = np.sum(a * b, axis=1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.mean(num / den))


def main() -> int:
    print(f"compressae {compressae.__version__} (library {compressae.library_version()}, "
          f"BLAS: {compressae.blas_name()})")
    X = load_embedded_dataset()
    n, d = X.shape
    print(f"embedded dataset: {n} x {d}")
    rng = np.random.default_rng(0)
    order = rng.permutation(n)
    X_train, X_test = X[order[:-500]], X[order[-500:]]

    # 1. Create and train (h = 2048 latents, k = 16 nonzeros per code).
    model = compressae.CompresSAE(d, latent_dim=2048, k=16, seed=0)
    before = mean_cosine(X_test, model.decode(model.encode(X_test)))
    # The default recipe holds 5% of the rows out as a validation split and
    # stops at convergence; epochs=3 caps this quick example.
    model.fit(X_train, batch_size=1024, epochs=3, validation_steps=0, progress=True)  # validate every epoch
    history = model.history_
    print(f"{len(history)} steps, loss {history[0]:.4f} -> {history[-1]:.4f}, "
          f"validation loss per epoch {np.round(model.validation_loss_, 4)}")
    n_fit = len(X_train) - round(0.05 * len(X_train))
    assert len(history) == 3 * int(np.ceil(n_fit / 1024)) and len(model.validation_loss_) == 3
    assert history[-1] < history[0], "training must lower the loss"

    # 2. Encode: k (index, value) pairs per row; 8k bytes per vector as int32+float32.
    codes = model.encode(X_test)
    assert codes.indices.shape == (len(X_test), 16) and codes.values.dtype == np.float32
    assert codes.indices.min() >= 0 and codes.indices.max() < model.latent_dim
    bytes_per_vector = codes.indices.itemsize * 16 + codes.values.itemsize * 16
    print(f"codes: {codes.indices.shape}, {bytes_per_vector} bytes/vector vs "
          f"{4 * d} dense float32 ({4 * d / bytes_per_vector:.1f}x)")

    # 3. Decode and compare with the input.
    X_hat = model.decode(codes)
    after = mean_cosine(X_test, X_hat)
    print(f"mean reconstruction cosine on {len(X_test)} held-out rows: "
          f"{before:.4f} at initialisation -> {after:.4f} after training")
    assert after > before

    # Codes as a scipy CSR matrix, when scipy is installed.
    try:
        csr = codes.to_csr()
        print(f"as CSR: shape {csr.shape}, {csr.nnz} nonzeros")
        assert csr.shape == (len(X_test), model.latent_dim) and csr.nnz <= len(X_test) * 16
    except ImportError:
        print("scipy not installed: skipping to_csr()")

    # 4. Save and load: identical weights, identical codes.
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.safetensors")
        model.save(path)
        loaded = compressae.CompresSAE.load(path)
        assert (loaded.input_dim, loaded.latent_dim, loaded.k) == (d, 2048, 16)
        assert np.array_equal(loaded.decoder_w, model.decoder_w)
        again = loaded.encode(X_test)
        assert np.array_equal(again.indices, codes.indices)
        assert np.array_equal(again.values, codes.values)
        print(f"saved {os.path.getsize(path):,} bytes and reloaded: identical codes")

    # 5. Errors are exceptions with the library's message.
    try:
        model.encode(np.ones((2, d + 1), dtype=np.float32))
    except compressae.InvalidArgumentError as e:
        print(f"wrong width -> InvalidArgumentError: {e}")
    else:
        raise AssertionError("a wrong input width must raise")
    try:
        compressae.CompresSAE.load(os.path.join(tempfile.gettempdir(), "no-such-dir", "m.safetensors"))
    except compressae.Error as e:
        print(f"missing file -> {type(e).__name__}: {e}")
    else:
        raise AssertionError("loading a missing file must raise")

    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
