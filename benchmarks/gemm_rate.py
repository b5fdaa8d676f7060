#!/usr/bin/env python3
"""GFLOP/s of the library's encoder GEMM on each of its code paths.

Times ``csae_model_preactivations`` (normalise, ``x @ encoder_w + encoder_b``;
the GEMM is all but a few percent of it) into a reused output buffer, on the
encoder shape ``rows x d`` times ``d x h`` (default 4096 x 384 -> 4096), and
counts 2 * rows * d * h flops per call. Each path runs in a fresh subprocess
because the switches are read once, when the library loads:

- ``fast``: the library's choice (a BLAS when one is found, AVX2 + FMA kernels
  when the CPU has them);
- ``no-blas``: ``CSAE_DISABLE_BLAS=1``, the built-in GEMM with its AVX2 + FMA clone;
- ``baseline``: ``CSAE_DISABLE_BLAS=1 CSAE_DISABLE_AVX2=1``, the built-in GEMM
  for the plain x86-64 baseline.

Run from anywhere (uses the installed package, or ``COMPRESSAE_LIBRARY``):

    python3 benchmarks/gemm_rate.py [--rows 4096] [--d 384] [--h 4096]
                                    [--threads 1] [--runs 5]

Prints one line per path: backend, vector ISA, median wall seconds, GFLOP/s
and GFLOP per CPU-second (with one thread, the rate a machine shared with
other work would give the process alone).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

PATHS = {
    "fast": {},
    "no-blas": {"CSAE_DISABLE_BLAS": "1"},
    "baseline": {"CSAE_DISABLE_BLAS": "1", "CSAE_DISABLE_AVX2": "1"},
}


def worker(args) -> None:
    import numpy as np

    import compressae
    from compressae import _ffi  # the C call into a reused buffer

    compressae.set_num_threads(args.threads)
    model = compressae.CompresSAE(args.d, args.h, 32, seed=0, init="reference")
    x = np.random.default_rng(0).standard_normal((args.rows, args.d)).astype(np.float32)
    out = np.zeros((args.rows, args.h), dtype=np.float32)

    def call():
        model._handle.call(_ffi.csae_model_preactivations, _ffi.f32_ptr(x), args.rows, args.d,
                           _ffi.f32_ptr(out))

    call()  # warm-up: loads the BLAS, touches the buffers
    times, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        call()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    seconds, cpu_seconds = sorted(times)[len(times) // 2], sorted(cpu)[len(cpu) // 2]
    flops = 2.0 * args.rows * args.d * args.h
    print(json.dumps({"blas": compressae.blas_name(), "isa": compressae.vector_isa(),
                      "threads": compressae.get_num_threads(), "seconds": seconds,
                      "gflops": flops / seconds / 1e9, "cpu_gflops": flops / cpu_seconds / 1e9}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--d", type=int, default=384)
    parser.add_argument("--h", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1, help="worker threads (0: the default)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated: " + ", ".join(PATHS))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    print(f"encoder GEMM {args.rows} x {args.d} -> {args.h}, threads {args.threads}, median of {args.runs}")
    for name in args.paths.split(","):
        env = {k: v for k, v in os.environ.items() if k not in ("CSAE_DISABLE_BLAS", "CSAE_DISABLE_AVX2")}
        env.update(PATHS[name])
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--rows", str(args.rows), "--d", str(args.d),
               "--h", str(args.h), "--threads", str(args.threads), "--runs", str(args.runs)]
        r = json.loads(subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout)
        print(f"{name:9s} {r['blas']:40s} {r['isa']:9s} threads {r['threads']}  "
              f"{r['seconds'] * 1e3:8.1f} ms  {r['gflops']:6.1f} GFLOP/s  "
              f"({r['cpu_gflops']:6.1f} per CPU-second)")


if __name__ == "__main__":
    main()
