"""Ctrl-C (SIGINT) stops long calls promptly with KeyboardInterrupt.

Each case runs a child Python process that starts a call taking minutes,
gets SIGINT about a second later, and must raise KeyboardInterrupt (not
Cancelled, not "Exception ignored in ctypes callback") within a generous
bound, leaving the model or index usable and as it was after the last full
step (fit) or chunk (add).
"""

import os
import select
import signal
import subprocess
import sys
import textwrap
import time

import pytest

CHILD = textwrap.dedent(r"""
    import sys, time
    import numpy as np
    import compressae

    case = sys.argv[1]
    rng = np.random.default_rng(0)

    def ready():
        print("ready", flush=True)

    if case.startswith("fit"):
        X = rng.standard_normal((4096, 64)).astype(np.float32)
        settings = dict(batch_size=64, epochs=100000, learning_rate=1e-3, seed=3, warmup_steps=0,
                        learning_rate_decay="constant", validation_fraction=0.0, patience=0,
                        sparse_similarity_weight=0.0, num_threads=1)
        model = compressae.CompresSAE(64, latent_dim=256, k=4, seed=5)
        ready()
        try:
            model.fit(X, progress=(case == "fit-progress") or None, **settings)
        except KeyboardInterrupt:
            steps = len(model.history_)
            print("interrupted", steps, flush=True)
        else:
            print("finished", flush=True)
            sys.exit(1)
        # The weights are those of the last full step: the same steps, cut
        # by the progress callable, give the same weights.
        twin = compressae.CompresSAE(64, latent_dim=256, k=4, seed=5)
        try:
            twin.fit(X, progress=lambda step, total, loss: step < steps, **settings)
        except compressae.Cancelled:
            pass
        assert len(twin.history_) == steps
        np.testing.assert_array_equal(twin.encoder_w, model.encoder_w)
        np.testing.assert_array_equal(twin.decoder_w, model.decoder_w)
        np.testing.assert_array_equal(twin.history_, model.history_)
        model.encode(X[:10])
        model.fit(X[:256], batch_size=64, epochs=1)
        print("ok", flush=True)

    elif case == "fit-validation":
        # 5 steps of 1024 rows per epoch, then a validation pass over 95,000
        # rows (93 batches of the step's forward pass, 8192 latents: tens of
        # seconds on 2 cores): SIGINT arrives during that pass, which must
        # stop within a batch or so, not at its end.
        X = rng.standard_normal((100_000, 512), dtype=np.float32)
        model = compressae.CompresSAE(512, latent_dim=8192, k=4, seed=5)
        reports = []

        def progress(step, total, loss):
            reports.append(step)
            if step == 5:
                ready()  # the epoch's last step: the validation pass starts now

        try:
            model.fit(X, batch_size=1024, epochs=3, validation_fraction=0.95, patience=0,
                      learning_rate_decay="constant", warmup_steps=0, sparse_similarity_weight=0.0,
                      num_threads=1, progress=progress)
        except KeyboardInterrupt:
            print("interrupted", len(model.history_), flush=True)
        else:
            print("finished", flush=True)
            sys.exit(1)
        # The pass was cut: no validation loss recorded, the 5 steps kept,
        # and the progress callable saw each step once.
        assert len(model.history_) == 5, model.history_
        assert len(model.validation_loss_) == 0, model.validation_loss_
        assert reports == [1, 2, 3, 4, 5], reports
        model.encode(X[:10])
        print("ok", flush=True)

    elif case == "encode":
        model = compressae.CompresSAE(512, latent_dim=4096, k=4)
        # float32 C-contiguous: no conversion, the time is in the library.
        X = rng.standard_normal((100_000, 512), dtype=np.float32)
        ready()
        try:
            model.encode(X)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
        else:
            print("finished", flush=True)
            sys.exit(1)
        codes = model.encode(X[:3])
        print("ok", flush=True)

    elif case in ("add", "search"):
        model = compressae.CompresSAE(512, latent_dim=4096, k=4)
        index = compressae.SparseIndex(model, mode="sparse")
        index.add(rng.standard_normal((100, 512), dtype=np.float32))
        X = rng.standard_normal((100_000, 512), dtype=np.float32)
        ready()
        try:
            if case == "add":
                index.add(X)
            else:
                index.search(X, n=10)
        except KeyboardInterrupt as exc:
            print("interrupted", len(index), flush=True)
        else:
            print("finished", flush=True)
            sys.exit(1)
        if case == "add":
            added = len(index) - 100
            assert 0 < added < 1_000_000, added
            # The rows added are the first ones, with the next ids.
            scores, ids = index.search(X[added - 1], n=1, query_k=4)
            assert ids[0, 0] == 100 + added - 1, (ids, added)
        else:
            assert len(index) == 100
            index.search(X[:5], n=3)
        print("ok", flush=True)
""")


def _readline(proc, timeout):
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    return proc.stdout.readline().strip()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
@pytest.mark.parametrize("case", ["fit", "fit-progress", "fit-validation", "encode", "add", "search"])
def test_sigint_raises_keyboard_interrupt_promptly(case, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, str(script), case], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert _readline(proc, 60) == "ready"
        time.sleep(1.0)  # well inside the call (which takes minutes)
        assert proc.poll() is None, proc.stderr.read()
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        line = _readline(proc, 20)  # "did not hang"; typically well under a second
        latency = time.monotonic() - sent
        assert line is not None, f"no KeyboardInterrupt within 20 s of SIGINT ({case})"
        assert line.startswith("interrupted"), line
        if case == "fit-validation":
            # Stopped between batches of the pass, not after it.
            assert latency < 3.0, f"the validation pass stopped {latency:.1f} s after SIGINT"
        assert _readline(proc, 60) == "ok"
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert "Exception ignored" not in stderr, stderr
    assert "Cancelled" not in stderr, stderr
    print(f"{case}: stopped {latency:.2f} s after SIGINT")


# ------------------------------------------------------- the guard itself

from compressae._interrupt import InterruptGuard  # noqa: E402


@pytest.fixture
def python_sigint():
    """Python's own KeyboardInterrupt handler for the test, the previous
    one put back after it:
    another test or library in this process (Spark's gateway, say) may have
    replaced it, and the guard's behaviour depends on what it finds."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)


def _deliver_sigint():
    os.kill(os.getpid(), signal.SIGINT)
    for _ in range(1000):  # bytecodes: Python runs the handler in between
        pass


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill SIGINT")
def test_guard_records_and_raises_at_exit(python_sigint):
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with InterruptGuard() as guard:
            _deliver_sigint()
            assert guard.pending  # recorded, not raised mid-operation
            with InterruptGuard() as inner:  # nested: shares the record
                assert inner.pending
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill SIGINT")
def test_guard_runs_the_applications_handler_at_the_safe_point(python_sigint):
    calls = []

    class Stop(Exception):
        pass

    def handler(signum, frame):
        calls.append(signum)
        raise Stop()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with pytest.raises(Stop):
            with InterruptGuard() as guard:
                _deliver_sigint()
                assert calls == [signal.SIGINT] and guard.pending
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_guard_is_inert_off_the_main_thread():
    import threading

    before = signal.getsignal(signal.SIGINT)
    seen = []

    def run():
        with InterruptGuard() as guard:
            seen.append((guard.pending, signal.getsignal(signal.SIGINT)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [(False, before)]


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill SIGINT")
def test_guard_leaves_a_handler_installed_meanwhile(python_sigint):
    """The guard puts its predecessor back only if the handler is still its
    own: an application that installs a handler during the operation keeps it."""
    calls = []

    def handler(signum, frame):
        calls.append(signum)

    try:
        with InterruptGuard():
            signal.signal(signal.SIGINT, handler)
        assert signal.getsignal(signal.SIGINT) is handler
        _deliver_sigint()
        assert calls == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, python_sigint)


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill SIGINT")
def test_guards_nested_and_on_other_threads(python_sigint):
    import threading

    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        with InterruptGuard() as outer:
            installed = signal.getsignal(signal.SIGINT)
            assert installed is not before

            def run():
                # Off the main thread: inert, and it leaves the main thread's guard alone.
                with InterruptGuard() as guard:
                    assert not guard.pending

            threads = [threading.Thread(target=run) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert signal.getsignal(signal.SIGINT) == installed
            with InterruptGuard() as inner:
                with InterruptGuard():
                    pass
                # The inner guards installed nothing and removed nothing.
                assert signal.getsignal(signal.SIGINT) == installed
                _deliver_sigint()
                assert inner.pending and outer.pending
            assert signal.getsignal(signal.SIGINT) == installed
            assert outer.pending
    assert signal.getsignal(signal.SIGINT) is before
