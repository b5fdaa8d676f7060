#!/usr/bin/env python3
"""Training-step time of two or more builds of the library, side by side.

Each build (a libCompresSAE.so path) trains in its own subprocess
(COMPRESSAE_LIBRARY) on the same rows of the shared data with the
reference's recipe at batch 4096, d = 384, h = 4096 (``--k``, default 32),
one epoch of ``--steps`` steps without shuffling; a step's time is the time
between consecutive progress callbacks, the first step (set-up) left out.
Rounds go over every build in turn, so that load from other processes hits
them alike; the table gives each round's median step time per build and the
median over rounds. For changes too small for benchmarks/speed.py to resolve
against the noise of a shared machine.

    python3 benchmarks/train_step_ab.py --libs old/libCompresSAE.so new/libCompresSAE.so
"""
import argparse
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r"""
import sys, time, statistics, numpy as np, compressae
data, k, batch, steps, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
X = np.ascontiguousarray(np.load(data + "/wordnet_minilm384_f16.npy")[: batch * steps].astype(np.float32))
model = compressae.CompresSAE(X.shape[1], 4096, k, seed=0, init="reference")
times, last = [], [time.perf_counter()]
def tick(step, total, loss):
    now = time.perf_counter(); times.append(now - last[0]); last[0] = now
fit = dict(compressae.REFERENCE_TRAINING, batch_size=batch, epochs=1, shuffle=False, num_threads=threads)
model.fit(X, progress=tick, **fit)
print(statistics.median(times[1:]))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--libs", nargs="+", required=True, help="libCompresSAE.so files to compare")
    ap.add_argument("--data", default=os.path.join(ROOT, "..", "shared", "data"))
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=4)
    a = ap.parse_args()
    medians = {lib: [] for lib in a.libs}
    for r in range(a.rounds):
        for lib in a.libs:
            env = dict(os.environ, COMPRESSAE_LIBRARY=os.path.abspath(lib))
            out = subprocess.run([sys.executable, "-c", WORKER, a.data, str(a.k), str(a.batch), str(a.steps),
                                  str(a.threads)], env=env, check=True, capture_output=True, text=True)
            medians[lib].append(float(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1}: {lib}: {medians[lib][-1]:.4f} s/step", file=sys.stderr, flush=True)
    print(f"Training step, batch {a.batch}, d = 384, h = 4096, k = {a.k}, threads {a.threads or 'all'}; "
          f"median step time of {a.steps - 1} steps per round, {a.rounds} rounds, load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())} at the end\n")
    print("| build | " + " | ".join(f"round {r + 1}" for r in range(a.rounds)) + " | median |")
    print("|---|" + "---:|" * (a.rounds + 1))
    for lib, values in medians.items():
        print(f"| {lib} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {statistics.median(values):.4f} |")


if __name__ == "__main__":
    main()
