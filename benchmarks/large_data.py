"""Training on and encoding a float16 memory map larger than memory, with peak RSS.

Synthesises an (n, 384) float16 .npy file from the shipped WordNet
embeddings plus Gaussian noise (written in chunks, never whole in memory),
then, each in its own process under ``/usr/bin/time -v``:

- ``train``: ``CompresSAE.fit`` on the memory map (read in blocks of 256
  contiguous rows, pages released after each read) for a step budget
  (``--steps``, default 200 steps of 4096 rows: training stops there through
  the progress callable), saving the model;
- ``encode``: ``CompresSAE.encode`` of every row, with ``out=`` two .npy
  memory maps (indices int32 and values float32, ``(n, k)``).

Reports each process's peak resident set size ("Maximum resident set size")
and wall time, and deletes the files at the end (``--keep`` keeps them).

    python benchmarks/large_data.py --rows 20000000 --dir /work/tmp-large

Needs /usr/bin/time (Debian package ``time``) and about 17 GB of free disk
for 20M rows (15.4 GB of input, 2.6 GB of codes at k=16 plus the model).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BASE = os.path.join(HERE, "..", "python", "compressae", "data", "wordnet10k_minilm384_f16.npy")


def synthesise(path: str, rows: int, base_path: str, noise: float, seed: int, chunk: int = 65536) -> None:
    """Rows = a random row of the base data + `noise` * N(0, 1) per value, as float16."""
    base = np.load(base_path).astype(np.float32)
    rng = np.random.default_rng(seed)
    bank = (noise * rng.standard_normal((65536, base.shape[1]))).astype(np.float32)
    header = np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(rows, base.shape[1]))
    offset = header.offset
    del header
    with open(path, "r+b") as f:
        f.seek(offset)
        block = np.empty((chunk, base.shape[1]), dtype=np.float32)
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            np.add(base[rng.integers(0, len(base), n)], bank[rng.integers(0, len(bank), n)], out=block[:n])
            f.write(block[:n].astype(np.float16).tobytes())


def run_train(args) -> None:
    import compressae

    X = np.load(args.data, mmap_mode="r")
    model = compressae.CompresSAE(X.shape[1], latent_dim=args.latent_dim, k=args.k, seed=0)
    started = time.perf_counter()

    def budget(step, total, loss):
        return step < args.steps

    try:
        model.fit(X, batch_size=args.batch_size, epochs=1, progress=budget)
    except compressae.Cancelled:
        pass
    seconds = time.perf_counter() - started
    model.save(args.model)
    h = model.history_
    print(json.dumps({"steps": int(len(h)), "rows_read": int(len(h)) * args.batch_size,
                      "loss_first10": float(h[:10].mean()), "loss_last10": float(h[-10:].mean()),
                      "fit_seconds": seconds}))


def run_encode(args) -> None:
    import compressae

    X = np.load(args.data, mmap_mode="r")
    model = compressae.CompresSAE.load(args.model)
    k = model.k
    indices = np.lib.format.open_memmap(args.out + ".indices.npy", mode="w+", dtype=np.int32, shape=(X.shape[0], k))
    values = np.lib.format.open_memmap(args.out + ".values.npy", mode="w+", dtype=np.float32, shape=(X.shape[0], k))
    started = time.perf_counter()
    model.encode(X, out=(indices, values))
    seconds = time.perf_counter() - started
    indices.flush()
    values.flush()
    # Spot check: rows encoded again from memory give the same latents (the
    # values may differ in the last bits: the BLAS sums a GEMM of other rows
    # in another order).
    rows = np.sort(np.random.default_rng(1).integers(0, X.shape[0], 256))
    again = model.encode(np.asarray(X[rows], dtype=np.float32))
    print(json.dumps({"rows": int(X.shape[0]), "encode_seconds": seconds,
                      "spot_check_same_latents": float((again.indices == indices[rows]).mean()),
                      "spot_check_max_value_diff": float(np.abs(again.values - values[rows]).max())}))


def timed(argv: list) -> dict:
    """Runs argv under /usr/bin/time -v; its JSON line, peak RSS (KiB) and wall seconds."""
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, *argv], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result.update(peak_rss_mib=rss / 1024, wall_seconds=seconds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage", nargs="?", default="all", choices=["all", "train", "encode"])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--dir", default="/work/tmp-large")
    parser.add_argument("--base", default=DEFAULT_BASE, help="float16 .npy the rows are drawn from")
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--latent-dim", type=int, default=1024)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--data")
    parser.add_argument("--model")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.stage == "train":
        return run_train(args)
    if args.stage == "encode":
        return run_encode(args)

    os.makedirs(args.dir, exist_ok=True)
    data = os.path.join(args.dir, "embeddings_f16.npy")
    model = os.path.join(args.dir, "model.csae")
    out = os.path.join(args.dir, "codes")
    try:
        started = time.perf_counter()
        synthesise(data, args.rows, args.base, args.noise, seed=0)
        synth_seconds = time.perf_counter() - started
        print(f"synthesised {args.rows} x 384 float16 ({os.path.getsize(data) / 1e9:.1f} GB) "
              f"in {synth_seconds:.0f} s", flush=True)
        common = [f"--latent-dim={args.latent_dim}", f"--k={args.k}", f"--batch-size={args.batch_size}",
                  f"--steps={args.steps}", f"--data={data}", f"--model={model}", f"--out={out}"]
        train = timed([os.path.abspath(__file__), "train", *common])
        print("train:", json.dumps(train), flush=True)
        encode = timed([os.path.abspath(__file__), "encode", *common])
        print("encode:", json.dumps(encode), flush=True)
        print(json.dumps({"rows": args.rows, "file_gb": os.path.getsize(data) / 1e9, "latent_dim": args.latent_dim,
                          "k": args.k, "synth_seconds": synth_seconds, "train": train, "encode": encode}))
    finally:
        if not args.keep:
            shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
