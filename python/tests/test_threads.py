"""Concurrent use of one model from several Python threads; the default
worker count (environment, CPU affinity)."""

import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import compressae
from helpers import fit_ref


def test_three_threads_encode_like_one(wordnet):
    with compressae.CompresSAE(384, latent_dim=1024, k=16, seed=2) as m:
        expected = m.encode(wordnet)
        start = threading.Barrier(3)

        def worker(_):
            start.wait()  # all three threads call into the library together
            results = []
            for _ in range(20):
                results.append(m.encode(wordnet))
            return results

        with ThreadPoolExecutor(3) as pool:
            all_results = list(pool.map(worker, range(3)))
        for results in all_results:
            for codes in results:
                np.testing.assert_array_equal(codes.indices, expected.indices)
                np.testing.assert_array_equal(codes.values, expected.values)


def test_threads_mixing_calls(wordnet):
    x = wordnet[:300]
    with compressae.CompresSAE(384, latent_dim=512, k=8, seed=2) as m:
        codes = m.encode(x)
        expected = (m.decode(codes), m.preactivations(x))

        def worker(i):
            for _ in range(10):
                if i % 2:
                    np.testing.assert_array_equal(m.decode(codes), expected[0])
                else:
                    np.testing.assert_array_equal(m.preactivations(x), expected[1])
            return True

        with ThreadPoolExecutor(4) as pool:
            assert all(pool.map(worker, range(4)))


def test_errors_stay_on_their_thread(wordnet):
    # csae_last_error() is per thread: a failing call on one thread must not
    # show its message to (or take it from) another.
    x = wordnet[:100].copy()
    bad = x.copy()
    bad[42] = 0
    with compressae.CompresSAE(384, latent_dim=512, k=8) as m:
        def worker(i):
            for _ in range(30):
                if i % 2:
                    with pytest.raises(compressae.InvalidArgumentError, match="42"):
                        m.encode(bad)
                else:
                    m.encode(x)
            return True

        with ThreadPoolExecutor(4) as pool:
            assert all(pool.map(worker, range(4)))


def test_close_while_other_threads_encode(wordnet):
    # Closing must not free the model under a running call: each call either
    # completes normally or raises InvalidHandleError.
    x = wordnet[:1000]
    m = compressae.CompresSAE(384, latent_dim=1024, k=16)
    expected = m.encode(x)
    outcomes = []
    go = threading.Barrier(4)

    def worker():
        go.wait()
        while True:
            try:
                codes = m.encode(x)
            except compressae.InvalidHandleError:
                outcomes.append("closed")
                return
            np.testing.assert_array_equal(codes.indices, expected.indices)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    go.wait()
    m.encode(x)
    m.close()
    for t in threads:
        t.join(timeout=60)
    assert outcomes == ["closed"] * 3


def test_training_excludes_concurrent_training(wordnet):
    # Two fits on one model at once: one runs, the other is refused (BusyError)
    # or waits; neither crashes, and the model ends up usable.
    x = wordnet[:2000]
    with compressae.CompresSAE(384, latent_dim=1024, k=16) as m:
        errors = []

        def train():
            try:
                fit_ref(m, x, batch_size=100, epochs=2)
            except compressae.BusyError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=train) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=300)
        assert len(errors) <= 1
        assert m.encode(x[:10]).indices.shape == (10, 16)


def test_encode_while_training(wordnet):
    # Other calls interleave with the optimiser steps: they see consistent
    # weights (valid codes), never a crash or a half-written row.
    x = wordnet[:2000]
    with compressae.CompresSAE(384, latent_dim=1024, k=16) as m:
        done = threading.Event()
        seen = []

        def reader():
            while not done.is_set():
                codes = m.encode(x[:200])
                assert codes.indices.min() >= 0 and codes.indices.max() < 1024
                assert np.all(np.isfinite(codes.values))
                seen.append(1)

        t = threading.Thread(target=reader)
        t.start()
        try:
            fit_ref(m, x, batch_size=100, epochs=2)
        finally:
            done.set()
            t.join(timeout=60)
        assert m.history_.shape == (40,)
        assert seen


# ------------------------------------------------- default worker count
#
# The default is read once per process, so each case runs in a child
# process started with the environment (and CPU affinity) under test.

_PROBE = """
import os, sys
import numpy as np
import compressae
before = set(os.listdir("/proc/self/task"))
with compressae.CompresSAE(64, latent_dim=256, k=8, seed=0) as m:
    m.encode(np.random.default_rng(0).standard_normal((1024, 64)).astype(np.float32))
started = len(set(os.listdir("/proc/self/task")) - before)
print(compressae.get_num_threads(), started)
"""


def _probe(env_changes=None, prefix=(), cpus=None):
    """(default thread count, OS threads an encode started) in a child."""
    env = {k: v for k, v in os.environ.items() if k not in ("CSAE_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_changes or {})
    # The child must load this very package and library.
    package_parent = os.path.dirname(os.path.dirname(compressae.__file__))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    env["COMPRESSAE_LIBRARY"] = compressae.library_path
    preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus is not None else None
    out = subprocess.run([*prefix, sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True,
                         preexec_fn=preexec, timeout=300)
    assert out.returncode == 0, out.stderr
    count, started = out.stdout.split()
    return int(count), int(started)


def _one_cpu():
    return min(os.sched_getaffinity(0))


def test_default_is_at_most_the_usable_cpus():
    count, _ = _probe()
    assert 1 <= count <= len(os.sched_getaffinity(0))


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) not installed")
def test_taskset_one_cpu_gives_one_worker():
    count, started = _probe(prefix=("taskset", "-c", str(_one_cpu())))
    assert count == 1
    assert started == 0  # the encode ran on the calling thread alone


def test_affinity_of_one_cpu_gives_one_worker():
    count, started = _probe(cpus={_one_cpu()})
    assert (count, started) == (1, 0)


def test_environment_settings():
    assert _probe({"CSAE_NUM_THREADS": "1"}) == (1, 0)
    assert _probe({"OMP_NUM_THREADS": "1"}) == (1, 0)
    assert _probe({"OMP_NUM_THREADS": "3,1"})[0] == 3
    # The library's own setting wins; malformed values are ignored.
    assert _probe({"CSAE_NUM_THREADS": "2", "OMP_NUM_THREADS": "1"})[0] == 2
    assert _probe({"CSAE_NUM_THREADS": "many", "OMP_NUM_THREADS": "1"})[0] == 1
    # An explicit setting above the CPU count is honoured (the user chose it).
    assert _probe({"CSAE_NUM_THREADS": "3"}, cpus={_one_cpu()})[0] == 3


def test_several_workers_start_threads():
    # The probe's thread count sees workers when there are some, so its zeros
    # above mean something.
    count, started = _probe({"CSAE_NUM_THREADS": "2"})
    assert count == 2 and started >= 1
