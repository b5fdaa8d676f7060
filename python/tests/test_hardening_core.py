"""Hostile calls on the core: each case runs in a child process, so that a
library that kills its host (abort, overflow, out-of-memory trap) fails the
test instead of ending the test run."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


def run_case(code: str, timeout: float = 120.0) -> str:
    """Runs `code` in a fresh interpreter (compressae importable as in this
    process); returns its stdout, failing on a non-zero exit or a timeout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(TESTS.parent), env.get("PYTHONPATH", "")] if p)
    prelude = "import numpy as np, compressae, time\nfrom compressae import errors\n"
    proc = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (
        f"child exited with status {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr[-3000:]}")
    return proc.stdout


def test_model_too_large_for_memory_raises_out_of_memory():
    out = run_case("""
        try:
            compressae.CompresSAE(131072, latent_dim=131072, k=1)
            print("created")  # only where 2 x 64 GiB exist
        except compressae.OutOfMemoryError as exc:
            print("oom", exc)
    """)
    assert out.startswith("oom") or out.startswith("created")


def test_set_k_from_progress_callback_is_refused_while_fitting():
    out = run_case("""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((300, 16)).astype(np.float32)
        model = compressae.CompresSAE(16, latent_dim=64, k=4, seed=1)
        seen = []
        def progress(step, total, loss):
            try:
                model.k = 16
                seen.append("accepted")
            except compressae.BusyError:
                seen.append("busy")
        model.fit(x, batch_size=32, epochs=3, learning_rate=1e-3, warmup_steps=0, learning_rate_decay="constant",
                  validation_fraction=0.2, patience=0, sparse_similarity_weight=0, validation_steps=0,
                  progress=progress)
        print(set(seen), model.k, len(model.validation_loss_))
        model.k = 16
        print(model.k)
    """)
    assert out.splitlines() == ["{'busy'} 4 3", "16"]


@pytest.mark.parametrize("mode", ["sparse", "reconstructed"])
def test_search_with_n_far_above_the_item_count_is_quick(mode):
    out = run_case(f"""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((10, 16)).astype(np.float32)
        model = compressae.CompresSAE(16, latent_dim=64, k=4, seed=1)
        index = compressae.SparseIndex(model, mode="{mode}")
        index.add(x)
        start = time.perf_counter()
        scores, ids = index.search(x[:1], n=10**12)
        elapsed = time.perf_counter() - start
        print(sorted(ids[0].tolist()) == list(range(10)), ids.shape == (1, 10),
              scores.shape == (1, 10), elapsed < 1.0, elapsed)
    """)
    assert out.split()[:4] == ["True", "True", "True", "True"], out


def test_fit_with_a_billion_epochs_and_early_stopping():
    out = run_case("""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((200, 16)).astype(np.float32)
        model = compressae.CompresSAE(16, latent_dim=64, k=4, seed=1)
        model.fit(x, batch_size=8, epochs=10**9, learning_rate=1e-3, warmup_steps=0, learning_rate_decay="constant",
                  validation_fraction=0.1, patience=1, tolerance=0.99, sparse_similarity_weight=0,
                  validation_steps=0)
        print(len(model.history_), len(model.validation_loss_))
    """)
    assert out.split() == ["46", "2"]


@pytest.mark.parametrize("mode", ["sparse", "reconstructed"])
def test_index_of_a_retrained_model_refuses_to_save(mode, tmp_path):
    path = tmp_path / "stale.index"
    out = run_case(f"""
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 16)).astype(np.float32)
        model = compressae.CompresSAE(16, latent_dim=64, k=4, seed=1)
        index = compressae.SparseIndex(model, mode="{mode}")
        index.add(x)
        model.fit(x, batch_size=32, epochs=1, learning_rate=1e-3, warmup_steps=0, learning_rate_decay="constant",
                  validation_fraction=0, patience=0, sparse_similarity_weight=0)
        try:
            index.save({str(path)!r})
            print("saved")
        except compressae.Error as exc:
            print("refused", exc)
    """)
    assert out.startswith("refused") and "trained after items were added" in out, out
    assert not path.exists()


def test_fit_that_leaves_the_float_range_raises_and_keeps_the_weights():
    # A decoder entry of -1.7e38 (finite, accepted by from_weights) takes the
    # first step's products past the float range. Before the fix fit returned
    # normally with NaN weights (found by the C-API fuzz harness).
    import numpy as np
    import compressae
    encoder_w = np.array([
        [0.08, 1.27, 0.58, 0.12, -0.47, -1.35, -0.17, 1.86],
        [-0.48, -0.64, -0.24, -0.21, -0.56, 0.64, 0.33, 1.18],
        [0.60, 0.19, -2.10, 0.20, -0.65, 1.08, 0.07, -0.76],
        [-0.54, -1.20, -0.55, 0.32, 1.18, 0.52, 0.81, 0.89],
        [-0.32, 1.45, -1.35, 0.12, -0.53, -1.97, 1.66, -2.00]], np.float32)
    encoder_b = np.array([0.69, 1.79, -0.20, -0.12, -1.90, -0.25, 1.45, -0.52], np.float32)
    decoder_w = np.array([
        [-0.97, -2.32, 1.29, 0.41, -0.30], [1.04, -0.53, -0.33, 2.12, -0.90],
        [0.29, 0.22, 0.10, 0.01, -1.31], [-0.14, -0.24, -0.67, -0.83, -1.00],
        [-0.81, 0.41, 0.04, 1.66, -1.7e38], [-0.60, -0.54, -0.17, -0.35, 0.00],
        [1.94, -0.15, 0.13, -1.19, -1.50], [-0.14, -0.42, 0.20, 1.36, -0.51]], np.float32)
    model = compressae.CompresSAE.from_weights(encoder_w, encoder_b, decoder_w, k=1)
    x = np.array([[0.125, 0.8125, 0.8125, 0.8125, 0.8125]], np.float32)
    with pytest.raises(compressae.InvalidArgumentError, match="float range"):
        model.fit(x, epochs=2, batch_size=14, sparse_similarity_weight=0.03, validation_steps=0)
    np.testing.assert_array_equal(model.encoder_w, encoder_w)
    np.testing.assert_array_equal(model.encoder_b, encoder_b)
    np.testing.assert_array_equal(model.decoder_w, decoder_w)
    assert np.isfinite(model.encode(np.full((1, 5), 0.5, np.float32)).values).all()


def test_from_weights_refuses_an_encoder_whose_preactivations_could_overflow():
    # Finite weights whose pre-activations leave the float range used to
    # encode to -inf with an OK status (found by the C-API fuzz harness).
    import numpy as np
    import compressae
    d, h = 4, 8
    rng = np.random.default_rng(0)
    encoder_w = rng.standard_normal((d, h)).astype(np.float32)
    encoder_b = np.zeros(h, np.float32)
    decoder_w = rng.standard_normal((h, d)).astype(np.float32)
    big_column = encoder_w.copy()
    big_column[:, 3] = 1.7e38
    with pytest.raises(compressae.InvalidArgumentError, match="encoder_w column 3"):
        compressae.CompresSAE.from_weights(big_column, encoder_b, decoder_w, k=2)
    big_bias = encoder_b.copy()
    big_bias[5] = -3e38
    with pytest.raises(compressae.InvalidArgumentError, match=r"encoder_b\[5\]"):
        compressae.CompresSAE.from_weights(encoder_w, big_bias, decoder_w, k=2)
    # Just inside the limits, every encoded value is finite.
    edge_w = encoder_w.copy()
    edge_w[:, 0] = 9e18
    edge_b = encoder_b.copy()
    edge_b[1] = -1e38
    model = compressae.CompresSAE.from_weights(edge_w, edge_b, decoder_w, k=h)
    codes = model.encode(np.abs(rng.standard_normal((3, d))).astype(np.float32) + 1)
    assert np.isfinite(codes.values).all()
