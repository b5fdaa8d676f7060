#!/usr/bin/env python3
"""Where a training step's time goes: a `perf` profile of compressae training.

Trains at batch 4096, d = 384, h = 4096 (``--k``, default 32) on the shared
data for ``--steps`` steps with the reference's recipe, under
``perf record``, and prints the share of the samples taken in compressae
and its BLAS that fall in each part of the step: the encoder GEMM, the
top-4k selection, the reconstructions and gradient dot products, the
latent phase (gradients per latent and Adam), and the rest. Samples
outside those libraries (Python, loading the data, libc's copies) are left
out. Needs `perf` (linux-perf); the shares are of CPU samples over all
threads.

    python3 benchmarks/step_profile.py --threads 2 --steps 24
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import sys, numpy as np, compressae
data, k, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
X = np.ascontiguousarray(np.load(data + "/wordnet_minilm384_f16.npy")[: 4096 * steps].astype(np.float32))
model = compressae.CompresSAE(X.shape[1], 4096, k, seed=0, init="reference")
fit = dict(compressae.REFERENCE_TRAINING, batch_size=4096, epochs=1, shuffle=False, num_threads=threads)
model.fit(X, **fit)
"""

# (part, pattern on the symbol name), first match wins.
PARTS = [
    ("encoder GEMM (BLAS)", r"sgemm|gemm_|blas_thread"),
    ("top-4k selection", r"csae_k_select_top"),
    ("reconstructions and gradient dot products", r"csae_k_gather_axpy|csae_k_gather_dot"),
    ("latent phase (gradient sums, grouping, Adam)",
     r"csae_k_latent_block_sums|csae_k_adam|groupEntriesByLatentBlock|forEachLatentGradient|applyAdam"),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    if shutil.which("perf") is None:
        sys.exit("step_profile.py: needs perf (apt-get install linux-perf)")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "perf.data")
        subprocess.run(["perf", "record", "-F", "2000", "-o", out, "--", sys.executable, "-c", WORKER,
                        a.data, str(a.k), str(a.steps), str(a.threads)],
                       check=True, capture_output=True)
        report = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "dso,symbol",
                                 "--stdio"], check=True, capture_output=True, text=True).stdout
    shares = {name: 0.0 for name, _ in PARTS}
    rest = 0.0
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+)\s+\[.\]\s+(\S+)", line)
        if not m:
            continue
        share, dso, symbol = float(m.group(1)), m.group(2), m.group(3)
        if "CompresSAE" not in dso and "blas" not in dso.lower():
            continue
        for name, pattern in PARTS:
            if re.search(pattern, symbol):
                shares[name] += share
                break
        else:
            rest += share
    total = sum(shares.values()) + rest
    print(f"Training step profile: batch 4096, d = 384, h = 4096, k = {a.k}, threads {a.threads or 'all'}, "
          f"{a.steps} steps; share of the {total:.1f}% of samples in compressae and its BLAS\n")
    print("| part | share |")
    print("|---|---:|")
    for name, _ in PARTS:
        print(f"| {name} | {100 * shares[name] / total:.1f}% |")
    print(f"| rest of compressae (loss, normalisation, copies) | {100 * rest / total:.1f}% |")


if __name__ == "__main__":
    main()
