#!/usr/bin/env python3
"""Short probes of the dead-latent term: dead latents after a fixed number of steps.

For one data set of benchmarks/make_datasets.py and one k, trains
``CompresSAE(d, 4096, k, seed=0).fit(X, seed=1, epochs=EPOCHS, **settings)``
for each JSON dict of ``fit`` settings given, and prints the steps run, the
fraction of latents in no row's k-code afterwards, and the last training loss.
A small set is one step per epoch, so ``epochs`` is the number of steps.

Run:  python3 benchmarks/dead_latent_probe.py digits 8 60 \\
          '{"dead_latent_aux_weight": 0}' '{"dead_latent_aux_weight": 0.5, "dead_latent_aux_k": 4}'
"""

import json
import os
import sys
import time

import numpy as np

import compressae

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_datasets  # noqa: E402


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    name, k, epochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    X = make_datasets.GENERATORS[name](seed=0)
    print(f"load {os.getloadavg()[0]:.1f}, compressae {compressae.library_version()}")
    for spec in sys.argv[4:]:
        settings = json.loads(spec)
        model = compressae.CompresSAE(X.shape[1], 4096, k, seed=0)
        start = time.perf_counter()
        model.fit(X, seed=1, epochs=epochs, **settings)
        seconds = time.perf_counter() - start
        used = np.zeros(4096, bool)
        used[np.asarray(model.encode(X).indices).ravel()] = True
        print(f"{name} k={k} {settings} steps {len(model.history_)} dead {1 - used.mean():.3f} "
              f"loss {model.history_[-1]:.4f} {seconds:.0f}s", flush=True)


if __name__ == "__main__":
    main()
