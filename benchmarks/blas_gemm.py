"""Encoder GEMM rate with each BLAS the library can use, next to numpy.

    python3 benchmarks/blas_gemm.py [--rounds 7] [--threads 1 2]
        [--system-blas /path/to/libopenblas.so.0]

Shape: the encoder of a d = 384, h = 4096 model on a batch of 4096 rows,
i.e. ``X [4096, 384] @ encoder_w [384, 4096]``; GFLOP/s = 2 n d h / time.
Backends, each in its own process (the library picks its BLAS once):

- ``system OpenBLAS``: ``CSAE_BLAS_LIBRARY`` = ``--system-blas`` (default
  ``libopenblas.so.0``; skipped when it does not load);
- ``scipy-openblas32``: ``CSAE_BLAS_LIBRARY`` = the scipy-openblas32
  package's library (a dependency of the Python package; skipped without it);
- ``built-in kernel``: ``CSAE_DISABLE_BLAS=1``;
- ``numpy matmul``: ``X @ W`` with numpy's own BLAS, ``OPENBLAS_NUM_THREADS``
  set to the thread count.

compressae's time is ``model.preactivations(X)``: the GEMM plus the row
normalisation and bias, through the public API (a fresh output array per
call, as numpy's ``X @ W``). Each round times 3 calls after one warm-up;
the table gives the median over rounds of the per-call time, and the
spread (min - max GFLOP/s over rounds).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

N, D, H = 4096, 384, 4096

WORKER = r"""
import json, os, sys, time
import numpy as np
rounds, threads, kind = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
X = rng.standard_normal((%d, %d)).astype(np.float32)
W = (rng.standard_normal((%d, %d)) / np.sqrt(%d)).astype(np.float32)
if kind == "numpy":
    run = lambda: X @ W
    name = "numpy " + np.__version__
else:
    import compressae
    compressae.set_num_threads(threads)
    model = compressae.CompresSAE.from_weights(W, np.zeros(W.shape[1], np.float32),
                                               np.ascontiguousarray(W.T), k=8)
    run = lambda: model.preactivations(X)
    name = compressae.blas_name()
run()
times = []
for _ in range(rounds):
    t0 = time.perf_counter()
    for _ in range(3):
        run()
    times.append((time.perf_counter() - t0) / 3)
print(json.dumps({"name": name, "times": times}))
""" % (N, D, D, H, D)


def measure(kind, threads, rounds, env_changes):
    env = dict(os.environ)
    env.pop("CSAE_DISABLE_BLAS", None)
    env.pop("CSAE_BLAS_LIBRARY", None)
    env.update(env_changes)
    env["OPENBLAS_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", WORKER, str(rounds), str(threads), kind],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--system-blas", default="libopenblas.so.0")
    args = parser.parse_args()

    import compressae

    backends = [("system OpenBLAS", "compressae", {"CSAE_BLAS_LIBRARY": args.system_blas})]
    pip_blas = compressae._ffi.pip_blas_library()
    if pip_blas:
        backends.append(("scipy-openblas32", "compressae", {"CSAE_BLAS_LIBRARY": pip_blas}))
    else:
        print("scipy-openblas32 is not installed: skipped", file=sys.stderr)
    backends.append(("built-in kernel", "compressae", {"CSAE_DISABLE_BLAS": "1"}))
    backends.append(("numpy matmul", "numpy", {}))

    flops = 2.0 * N * D * H
    print(f"Encoder GEMM, {N} x {D} @ {D} x {H}: GFLOP/s (median of {args.rounds} rounds; "
          f"min - max), {os.cpu_count()} CPUs\n")
    header = "| backend | in use | " + " | ".join(f"{t} thread{'s' if t > 1 else ''}"
                                                 for t in args.threads) + " |"
    print(header)
    print("|" + " --- |" * (2 + len(args.threads)))
    for label, kind, env in backends:
        cells, name = [], ""
        for threads in args.threads:
            result = measure(kind, threads, args.rounds, env)
            name = result["name"]
            rates = [flops / t / 1e9 for t in result["times"]]
            median = flops / statistics.median(result["times"]) / 1e9
            cells.append(f"{median:.1f} ({min(rates):.1f} - {max(rates):.1f})")
        if label == "system OpenBLAS" and not name.startswith("OpenBLAS"):
            print(f"| {label} | not found ({args.system_blas}) |" + " - |" * len(args.threads))
            continue
        print(f"| {label} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
