"""Concurrent use of one model from several Python threads."""

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
