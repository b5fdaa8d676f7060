"""The progress callback of fit: calls, cancellation, exceptions."""

import numpy as np
import pytest

import compressae
from helpers import fit_ref


@pytest.fixture
def data(wordnet):
    return wordnet[:500]


@pytest.fixture
def model():
    with compressae.CompresSAE(384, latent_dim=512, k=8, seed=0) as m:
        yield m


def test_called_once_per_step(model, data):
    calls = []
    fit_ref(model, data, batch_size=100, epochs=2, progress=lambda *a: calls.append(a))
    assert [c[0] for c in calls] == list(range(1, 11))
    assert all(c[1] == 10 for c in calls)
    assert all(isinstance(c[0], int) and isinstance(c[2], float) for c in calls)
    np.testing.assert_array_equal(np.array([c[2] for c in calls], np.float32), model.history_)


def test_returning_false_cancels(model, data):
    before = model.encoder_w
    with pytest.raises(compressae.Cancelled) as info:
        fit_ref(model, data, batch_size=100, epochs=2, progress=lambda step, total, loss: step < 3)
    assert info.value.status == compressae._ffi.CSAE_ERR_CANCELLED
    assert isinstance(info.value, compressae.Error)
    assert model.history_.shape == (3,)  # the steps done are kept
    assert not np.array_equal(model.encoder_w, before)
    model.encode(data)  # still usable


def test_returning_none_or_true_continues(model, data):
    fit_ref(model, data, batch_size=100, progress=lambda *a: None)
    assert model.history_.shape == (5,)
    fit_ref(model, data, batch_size=100, progress=lambda *a: True)
    assert model.history_.shape == (5,)
    fit_ref(model, data, batch_size=100, progress=lambda *a: 0)  # only False cancels
    assert model.history_.shape == (5,)


def test_exception_in_callback_is_reraised(model, data):
    class Boom(Exception):
        pass

    def callback(step, total, loss):
        if step == 2:
            raise Boom("from the callback")

    with pytest.raises(Boom, match="from the callback"):
        fit_ref(model, data, batch_size=100, progress=callback)
    assert model.history_.shape == (2,)
    fit_ref(model, data, batch_size=100)  # the model is fine afterwards
    assert model.history_.shape == (5,)


def test_keyboard_interrupt_in_callback(model, data):
    def callback(step, total, loss):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit_ref(model, data, batch_size=100, progress=callback)
    assert model.history_.shape == (1,)


def test_progress_true_writes_to_stderr(model, data, capsys):
    fit_ref(model, data, batch_size=100, progress=True)
    err = capsys.readouterr().err
    assert "compressae" in err
    assert "5/5" in err


def test_progress_false_and_none_are_silent(model, data, capsys):
    fit_ref(model, data, batch_size=100, progress=False)
    fit_ref(model, data, batch_size=100, progress=None)
    assert capsys.readouterr().err == ""


def test_bad_progress_type(model, data):
    with pytest.raises(TypeError):
        fit_ref(model, data, batch_size=100, progress="yes")


def test_progress_true_uses_tqdm_when_installed(model, data, monkeypatch):
    # A stand-in tqdm module records how the bar is driven.
    import sys
    import types

    bars = []

    class FakeTqdm:
        def __init__(self, total, **kwargs):
            self.total, self.n, self.closed, self.postfix = total, 0, False, None
            bars.append(self)

        def update(self, count):
            self.n += count

        def set_postfix(self, **kwargs):
            self.postfix = kwargs

        def close(self):
            self.closed = True

    module = types.ModuleType("tqdm.auto")
    module.tqdm = FakeTqdm
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", module)
    fit_ref(model, data, batch_size=100, epochs=2, progress=True)
    assert len(bars) == 1
    bar = bars[0]
    assert (bar.total, bar.n, bar.closed) == (10, 10, True)
    assert "loss" in bar.postfix


def test_callback_may_use_the_model(model, data, tmp_path):
    # Checkpointing from the callback: encode/save/loss run between steps
    # without deadlocking on the training lock.
    def callback(step, total, loss):
        model.encode(data[:10])
        model.save(tmp_path / f"step{step}.safetensors")

    fit_ref(model, data, batch_size=100, progress=callback)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"step{i}.safetensors" for i in range(1, 6)]
    with compressae.CompresSAE.load(tmp_path / "step5.safetensors") as last:
        np.testing.assert_array_equal(last.encoder_w, model.encoder_w)
