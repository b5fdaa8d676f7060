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
