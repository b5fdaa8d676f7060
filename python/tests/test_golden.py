"""Parity with the PyTorch reference (Tests/Fixtures/golden, see its README)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import compressae
from helpers import assert_close_to_max, fit_ref


def model_at_init(tensors, settings):
    return compressae.CompresSAE.from_weights(
        tensors["encoder_w"], tensors["encoder_b"], tensors["decoder_w"], k=settings["k"])


def test_shapes_match_settings(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        assert (m.input_dim, m.latent_dim, m.k) == (s["d"], s["h"], s["k"])
        assert t["x"].shape == (s["batch"], s["d"])
        np.testing.assert_array_equal(m.encoder_w, t["encoder_w"])
        np.testing.assert_array_equal(m.encoder_b, t["encoder_b"])
        np.testing.assert_array_equal(m.decoder_w, t["decoder_w"])


def test_preactivations(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        assert_close_to_max(m.preactivations(t["x"]), t["pre"], 1e-5, "pre")


@pytest.mark.parametrize("which", ["k", "4k"])
def test_codes_and_reconstruction(golden, which):
    _, t, s = golden
    k = s["k"] if which == "k" else 4 * s["k"]
    expected = t[f"codes_{which}"]
    with model_at_init(t, s) as m:
        codes = m.encode(t["x"], k=k)
        assert codes.indices.shape == (s["batch"], k)
        assert codes.dim == s["h"]
        dense = codes.toarray()
        # The golden batch keeps a gap at every top-k boundary, so the selected
        # set must be identical, not merely close.
        np.testing.assert_array_equal(dense != 0, expected != 0)
        assert_close_to_max(dense, expected, 1e-5, f"codes_{which}")
        # Within a row: by decreasing |value|.
        assert np.all(np.diff(np.abs(codes.values), axis=1) <= 0)
        assert_close_to_max(m.decode(codes), t[f"recon_{which}"], 1e-5, f"recon_{which}")


def test_losses_at_init(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        losses, _ = m.loss_and_gradients(t["x"])
    assert set(losses) == set(compressae.LOSS_NAMES)
    for name, expected in s["losses_at_init"].items():
        assert losses[name] == pytest.approx(expected, rel=1e-5), name
    assert losses["L0"] == s["k"]
    assert losses["Loss"] == pytest.approx(losses["Cosine"] + losses["Cosine_4k"] / 8, rel=1e-6)


def test_gradients(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        _, grads = m.loss_and_gradients(t["x"])
    for name in ("encoder_w", "encoder_b", "decoder_w"):
        assert_close_to_max(grads[name], t[f"grad_{name}"], 1e-5, f"grad_{name}")


def test_one_adam_step(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        fit_ref(m, t["x"], batch_size=s["batch"], epochs=1, learning_rate=s["lr"], shuffle=False)
        assert m.history_.shape == (1,)
        assert m.history_[0] == pytest.approx(s["losses_at_init"]["Loss"], rel=1e-5)
        for name in ("encoder_w", "encoder_b", "decoder_w"):
            np.testing.assert_allclose(getattr(m, name), t[f"{name}_step1"], rtol=0, atol=1e-4,
                                       err_msg=name)
        norms = np.linalg.norm(m.decoder_w, axis=1)
        np.testing.assert_allclose(norms, 1.0, atol=1e-5)


def test_twenty_steps(golden):
    _, t, s = golden
    with model_at_init(t, s) as m:
        fit_ref(m, t["x"], batch_size=s["batch"], epochs=s["steps"], learning_rate=s["lr"], shuffle=False)
        np.testing.assert_allclose(m.history_, t["loss_trace"], rtol=1e-4, atol=0)
        for name in ("encoder_w", "encoder_b", "decoder_w"):
            assert_close_to_max(getattr(m, name), t[f"{name}_final"], 1e-3, f"{name}_final")


_OTHER_PATH = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import compressae
from helpers import fit_ref, load_golden
t, s = load_golden(sys.argv[2])
with compressae.CompresSAE.from_weights(t["encoder_w"], t["encoder_b"], t["decoder_w"], k=s["k"]) as m:
    pre = m.preactivations(t["x"])
    fit_ref(m, t["x"], batch_size=s["batch"], epochs=s["steps"], learning_rate=s["lr"], shuffle=False)
    np.savez(sys.argv[3], pre=pre, history=m.history_, blas=compressae.blas_name(),
             isa=compressae.vector_isa(), **{n: getattr(m, n) for n in ("encoder_w", "encoder_b", "decoder_w")})
"""


def test_built_in_baseline_path_agrees(golden, tmp_path):
    # The same computation with the BLAS and the AVX2 kernels switched off
    # (a child process: the switches are read when the library loads) agrees
    # with this process's within the golden tolerances.
    name, t, s = golden
    env = dict(os.environ, CSAE_DISABLE_BLAS="1", CSAE_DISABLE_AVX2="1",
               COMPRESSAE_LIBRARY=compressae.library_path,
               PYTHONPATH=os.pathsep.join([str(Path(compressae.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    out = tmp_path / "other.npz"
    run = subprocess.run([sys.executable, "-c", _OTHER_PATH, str(Path(__file__).parent), name, str(out)],
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    other = np.load(out)
    assert str(other["blas"]).startswith("none") and str(other["isa"]) == "baseline"
    with model_at_init(t, s) as m:
        assert_close_to_max(m.preactivations(t["x"]), other["pre"], 1e-5, "pre")
        fit_ref(m, t["x"], batch_size=s["batch"], epochs=s["steps"], learning_rate=s["lr"], shuffle=False)
        np.testing.assert_allclose(m.history_, other["history"], rtol=1e-4, atol=0)
        for n in ("encoder_w", "encoder_b", "decoder_w"):
            assert_close_to_max(getattr(m, n), other[n], 1e-3, n)
