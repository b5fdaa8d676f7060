"""fit on data read a batch at a time: memory maps, other dtypes, streams of batches."""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import compressae
from compressae import TrainingRows, TrainingStream

# validation_steps=0: a validation after every epoch, which the counts below assume.
SETTINGS = dict(epochs=3, batch_size=200, seed=4, validation_steps=0)


def _model():
    return compressae.CompresSAE(384, latent_dim=512, k=8, seed=2)


def _same(a, b):
    np.testing.assert_array_equal(a.encoder_w, b.encoder_w)
    np.testing.assert_array_equal(a.decoder_w, b.decoder_w)
    np.testing.assert_array_equal(a.history_, b.history_)
    np.testing.assert_array_equal(a.validation_loss_, b.validation_loss_)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """1500 WordNet rows: float16 in memory, the same as float32, and as a float16 .npy memory map."""
    from helpers import WORDNET

    x16 = np.load(WORDNET)[:1500].astype(np.float16)
    path = tmp_path_factory.mktemp("memmap") / "x16.npy"
    np.save(path, x16)
    return x16, x16.astype(np.float32), np.load(path, mmap_mode="r")


def test_float16_and_memmap_rows_train_exactly_as_float32_in_memory(data):
    x16, x32, mm = data
    reference = _model().fit(x32, **SETTINGS)
    assert len(reference.validation_loss_) == 3
    _same(reference, _model().fit(x16, **SETTINGS))
    _same(reference, _model().fit(TrainingRows(mm, block_rows=1), **SETTINGS))
    # A float64 array: converted per batch, same result.
    _same(reference, _model().fit(x32.astype(np.float64), **SETTINGS))


def test_memmap_is_read_in_blocks_with_validation_and_early_stopping(data):
    _, x32, mm = data
    model = _model().fit(mm, **SETTINGS)  # blocks of 256 rows: 6 blocks, one held out
    assert np.isfinite(model.history_).all()
    assert len(model.validation_loss_) == 3
    assert model.validation_loss_[-1] < model.validation_loss_[0]
    # Steps per epoch: ceil(training rows / 200), training rows = 1500 minus one block.
    steps = len(model.history_) // 3
    assert steps in (7, 8)
    # Blocks of 100: the plateau rule stops training (a tolerance no epoch meets).
    stopped = _model().fit(TrainingRows(mm, block_rows=100), epochs=50, batch_size=200, tolerance=0.99,
                           patience=1, plateau_reductions=0, validation_steps=0)
    assert len(stopped.validation_loss_) == 2
    # Reading the memory map as blocks gives codes of the same quality as in memory.
    encoded = model.encode(x32[:200])
    assert encoded.indices.shape == (200, 8)


def test_stream_of_batches(data):
    x16, x32, _ = data

    def batches():
        for start in range(0, 1500, 130):
            yield x16[start:start + 130]

    passes = []

    class Reiterable:
        def __iter__(self):
            passes.append(1)
            return iter([x32[i:i + 500] for i in range(0, 1500, 500)])

    for source in (batches, Reiterable(), TrainingStream(batches, max_validation_rows=40)):
        calls = []
        model = _model().fit(source, progress=lambda step, total, loss: calls.append(total), **SETTINGS)
        assert len(model.validation_loss_) == 3
        assert np.isfinite(model.history_).all()
        assert calls[0] == 0 and calls[-1] == len(model.history_)  # total known after the first pass
    assert len(passes) == 3
    # The cap bounds the held-out rows: 40 held out, 1460 trained on, 8 steps of 200 per epoch.
    assert len(model.history_) == 3 * 8

    # Early stopping on the held-out sample.
    stopped = _model().fit(batches, epochs=50, batch_size=200, tolerance=0.99, patience=1, plateau_reductions=0,
                           validation_steps=0)
    assert len(stopped.validation_loss_) == 2

    # A generator serves one epoch; more need a callable or a re-iterable.
    one = _model().fit(batches(), epochs=1, batch_size=200, validation_steps=0)
    assert len(one.validation_loss_) == 1
    with pytest.raises(compressae.InvalidArgumentError, match="can be read once"):
        _model().fit(batches(), epochs=2, batch_size=200)
    # Refused before the first step: the weights and the generator are untouched.
    fresh, generator = _model(), batches()
    before = fresh.decoder_w.copy()
    with pytest.raises(compressae.InvalidArgumentError, match="can be read once"):
        fresh.fit(generator, epochs=2, batch_size=200)
    assert np.array_equal(fresh.decoder_w, before) and len(fresh.history_) == 0
    assert next(generator).shape[1] == x32.shape[1]
    with pytest.raises(compressae.InvalidArgumentError, match="cosine and linear"):
        _model().fit(batches, learning_rate_decay="cosine", **SETTINGS)


def test_errors_in_a_source_stop_training_and_are_raised(data):
    x16, x32, _ = data

    def failing():
        yield x32[:500]
        yield x32[500:1000]
        raise OSError("disk on fire")

    model = _model()
    with pytest.raises(OSError, match="disk on fire"):
        model.fit(failing, epochs=2, batch_size=200)
    assert len(model.history_) == 0 or np.isfinite(model.history_).all()

    with pytest.raises(compressae.InvalidArgumentError, match="columns"):
        _model().fit(lambda: iter([x32[:, :100]]), epochs=1)
    bad = x16.copy()
    bad[700] = 0
    with pytest.raises(compressae.InvalidArgumentError, match="row 700 is all zeros"):
        _model().fit(bad, **SETTINGS)
    passes = []

    def changing():
        passes.append(1)
        return iter([x32[:600] if len(passes) == 1 else x32[:500]])

    with pytest.raises(compressae.InvalidArgumentError, match="every pass must give the same rows"):
        _model().fit(changing, epochs=2, batch_size=200)
    with pytest.raises(compressae.InvalidArgumentError, match="block_rows"):
        TrainingRows(x16, block_rows=0)


CHILD = textwrap.dedent(r"""
    import sys
    import numpy as np
    import compressae

    case, path = sys.argv[1], sys.argv[2]
    X = np.load(path, mmap_mode="r")
    data = X if case == "memmap" else (lambda: (X[i:i + 1000] for i in range(0, X.shape[0], 1000)))
    model = compressae.CompresSAE(64, latent_dim=256, k=4, seed=5)
    print("ready", flush=True)
    try:
        model.fit(data, batch_size=64, epochs=100000, validation_fraction=0.0, patience=0,
                  learning_rate_decay="constant", num_threads=1)
    except KeyboardInterrupt:
        print("interrupted", len(model.history_), flush=True)
    else:
        sys.exit(1)
    model.encode(np.asarray(X[:10], dtype=np.float32))
    print("ok", flush=True)
""")


def _readline(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else None


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.parametrize("case", ["memmap", "stream"])
def test_ctrl_c_stops_training_from_a_source(case, tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.random.default_rng(0).standard_normal((20000, 64)).astype(np.float16))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen([sys.executable, str(script), case, str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        assert _readline(proc, 60) == "ready"
        time.sleep(1.0)
        assert proc.poll() is None, proc.stderr.read()
        proc.send_signal(signal.SIGINT)
        line = _readline(proc, 20)
        assert line is not None and line.startswith("interrupted"), line
        assert int(line.split()[1]) > 0
        assert _readline(proc, 60) == "ok"
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Exception ignored" not in stderr, stderr


def test_torch_bfloat16_rows():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    from helpers import WORDNET

    x32 = np.load(WORDNET)[:800].astype(np.float32)
    x = torch.from_numpy(x32).to(torch.bfloat16)
    widened = x.to(torch.float32).numpy()
    settings = dict(epochs=2, batch_size=100, seed=1)
    # Single rows (gathered in one index per batch) and blocks (sliced), both exactly as in memory.
    _same(_model().fit(widened, **settings), _model().fit(x, **settings))
    _same(_model().fit(TrainingRows(widened, block_rows=50), **settings),
          _model().fit(TrainingRows(x, block_rows=50), **settings))
