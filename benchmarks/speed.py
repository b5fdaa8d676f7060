#!/usr/bin/env python3
"""Speed benchmark: compressae against the PyTorch reference (and numpy).

Measures, on the WordNet MiniLM embeddings (117,659 x 384, float16 on disk,
cast to float32) and on a 768-d set derived from them:

1. training step time (median of several steps after one warm-up) and peak
   RSS, compressae vs the PyTorch reference (benchmarks/reference_torch.py),
   batch 4096 and 100,000, h = 4096, k in {8, 32, 128}, d in {384, 768};
2. loss agreement: both trained for 20 steps from identical weights on the
   same batches, losses side by side;
3. encoder throughput (vectors/s): compressae ``encode`` vs compressae
   ``preactivations`` (the dense GEMM alone) vs the reference's encode vs
   numpy;
4. sgemm GFLOP/s inside the encoder vs numpy (and torch) matmul.

Every configuration runs in a fresh subprocess (this script with the hidden
``--worker`` option), so that peak RSS belongs to that configuration alone.
Results are printed as markdown and written to ``--out``.

The 768-d set: each 384-d row x becomes [x, x @ Q] where Q is a fixed random
384 x 384 rotation (QR of a Gaussian matrix, numpy seed 768). Its rows have
norm sqrt(2) and the set has rank 384; for timing only the shape matters.

Run from anywhere:  python3 benchmarks/speed.py [--quick] [--threads N]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_FILE = "wordnet_minilm384_f16.npy"
H = 4096
KS = (8, 32, 128)
DIMS = (384, 768)
SMALL_BATCH = 4096
BIG_BATCH = 100_000
ROTATION_SEED = 768
RESULT_TAG = "SPEED-RESULT "


# ---------------------------------------------------------------- helpers

def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:  # not installed, or an install that cannot load
        return False
    return True


def peak_rss_mb() -> float:
    """Peak RSS of this process in MB.

    Linux: VmHWM from /proc/self/status, the high-water mark of this
    process's own address space. (ru_maxrss is not usable in a child: Linux
    carries the parent's peak across fork + exec, so every worker would
    report at least the driver's RSS.) Elsewhere: ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def median(values):
    return statistics.median(values) if values else float("nan")


def load_data(data_dir: str, d: int, rows: slice = slice(None)):
    """Rows `rows` of the float32 data set of dimension d (384: as stored;
    768: see the module docstring). Only those rows are read (memory map), so
    that a worker's RSS holds only the data it uses."""
    import numpy as np

    X = np.load(Path(data_dir) / DATA_FILE, mmap_mode="r")
    base = X.shape[1]
    X = np.ascontiguousarray(X[rows], dtype=np.float32)
    if d == base:
        return X
    if d != 2 * base:
        raise SystemExit(f"no {d}-d set can be made from {base}-d data")
    rng = np.random.default_rng(ROTATION_SEED)
    q, r = np.linalg.qr(rng.standard_normal((base, base)))
    q *= np.sign(np.diag(r))  # a uniformly random rotation
    return np.ascontiguousarray(np.hstack([X, X @ q.astype(np.float32)]))


def data_rows(data_dir: str) -> int:
    import numpy as np

    return int(np.load(Path(data_dir) / DATA_FILE, mmap_mode="r").shape[0])


def emit(result: dict) -> None:
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(RESULT_TAG + json.dumps(result) + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- workers
# Each runs in its own process and ends with emit().

def _train_data(cfg):
    """(data, epochs, mode) for warmup + steps steps of batch b without
    shuffling: distinct consecutive batches when the data set holds them, else
    the first b rows again every step (epochs = steps)."""
    b, total = cfg["batch"], cfg["warmup"] + cfg["steps"]
    n = data_rows(cfg["data"])
    if b * total <= n:
        return load_data(cfg["data"], cfg["d"], slice(0, b * total)), 1, "distinct"
    if b > n:
        raise SystemExit(f"batch {b} exceeds the {n} rows")
    return load_data(cfg["data"], cfg["d"], slice(0, b)), total, "repeated"


def worker_train_ours(cfg):
    import compressae

    X, epochs, mode = _train_data(cfg)
    base_rss = peak_rss_mb()  # imports + data: what an idle process would hold
    b = cfg["batch"]
    # The reference's model and training, faithfully: the same algorithm as the peer.
    model = compressae.CompresSAE(cfg["d"], H, cfg["k"], seed=0, init="reference")
    stamps, cpu = [], []

    def progress(step, total, loss):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())

    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, **{**compressae.REFERENCE_TRAINING, "epochs": epochs}, batch_size=b, shuffle=False,
              num_threads=cfg["threads"], progress=progress)
    total = time.perf_counter() - t0
    # Step i's time: from the previous progress callback (or the call) to its own.
    times = [b_ - a for a, b_ in zip([t0] + stamps[:-1], stamps)]
    cpus = [b_ - a for a, b_ in zip([c0] + cpu[:-1], cpu)]
    emit({"times": times, "cpu": cpus, "warmup": cfg["warmup"], "fit_total": total,
          "batches": mode, "load": os.getloadavg()[0],
          "base_rss_mb": base_rss, "losses": [float(v) for v in model.history_]})


def worker_train_ref(cfg):
    import torch

    sys.path.insert(0, str(HERE))
    from reference_torch import ReferenceSAE

    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(0)
    X, epochs, mode = _train_data(cfg)
    Xt = torch.from_numpy(X)
    base_rss = peak_rss_mb()
    b, warm, steps = cfg["batch"], cfg["warmup"], cfg["steps"]
    ref = ReferenceSAE(cfg["d"], H, cfg["k"])
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3)
    times, cpus, losses = [], [], []
    for step in range(warm + steps):
        start = 0 if mode == "repeated" else step * b
        batch = Xt[start:start + b]
        t, c = time.perf_counter(), time.process_time()
        losses.append(ref.train_step(opt, batch))
        times.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    emit({"times": times, "cpu": cpus, "warmup": warm, "batches": mode,
          "load": os.getloadavg()[0], "base_rss_mb": base_rss,
          "losses": losses})


def worker_agree(cfg):
    import numpy as np
    import torch
    import compressae

    sys.path.insert(0, str(HERE))
    from reference_torch import ReferenceSAE

    torch.set_num_threads(cfg["threads"])
    b, steps = cfg["batch"], cfg["steps"]
    rows = load_data(cfg["data"], cfg["d"], slice(0, b * steps))
    model = compressae.CompresSAE(cfg["d"], H, cfg["k"], seed=0, init="reference")
    ref = ReferenceSAE(cfg["d"], H, cfg["k"],
                       weights=(model.encoder_w, model.encoder_b, model.decoder_w))
    model.fit(rows, **{**compressae.REFERENCE_TRAINING, "learning_rate": cfg["lr"]}, batch_size=b, shuffle=False,
              num_threads=cfg["threads"])
    ours = [float(v) for v in model.history_]
    opt = torch.optim.Adam(ref.parameters(), lr=cfg["lr"])
    Xt = torch.from_numpy(rows)
    theirs = [ref.train_step(opt, Xt[i * b:(i + 1) * b]) for i in range(steps)]
    weights = {}
    for name in ("encoder_w", "encoder_b", "decoder_w"):
        a = getattr(model, name)
        r = getattr(ref, name).detach().numpy()
        weights[name] = [float(np.abs(a - r).max()), float(np.abs(r).max())]
    emit({"ours": ours, "ref": theirs, "weights": weights})


def _time_round_robin(methods, runs):
    """{name: [seconds]} and {name: [cpu seconds]}: one warm-up call of each
    method, then `runs` rounds calling every method once per round, so that
    load from other processes hits all methods alike."""
    for fn in methods.values():
        fn()
    times = {name: [] for name in methods}
    cpu = {name: [] for name in methods}
    for _ in range(runs):
        for name, fn in methods.items():
            t, c = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t)
            cpu[name].append(time.process_time() - c)
    return times, cpu


def worker_encode(cfg):
    import numpy as np
    import compressae
    from compressae import _ffi

    d, k, n, runs = cfg["d"], cfg["k"], cfg["rows"], cfg["runs"]
    threads_note = "all cores (no thread setting in this library version)"
    setter = getattr(_ffi, "csae_set_num_threads", None)
    if setter is not None and setter(cfg["threads"]) == 0:
        threads_note = f"{cfg['threads']} (csae_set_num_threads)"
    model = compressae.CompresSAE(d, H, k, seed=0, init="reference")
    if cfg["train_steps"]:
        # Trained (not freshly initialised) weights, so that the top-k sees
        # realistic pre-activations.
        model.fit(load_data(cfg["data"], d, slice(0, SMALL_BATCH * cfg["train_steps"])),
                  **compressae.REFERENCE_TRAINING, batch_size=SMALL_BATCH, shuffle=False,
                  num_threads=cfg["threads"])
    Xe = load_data(cfg["data"], d, slice(-n, None))  # rows not used for training
    W, bias = model.encoder_w, model.encoder_b
    Xn = Xe / np.linalg.norm(Xe, axis=1, keepdims=True)
    buf = np.zeros((n, H), dtype=np.float32)  # reused output, already touched

    def numpy_encode():
        xn = Xe / np.linalg.norm(Xe, axis=1, keepdims=True)
        p = xn @ W + bias
        idx = np.argpartition(-np.abs(p), k, axis=1)[:, :k]
        return idx, np.take_along_axis(p, idx, axis=1)

    methods = {
        "encode": lambda: model.encode(Xe),
        "preact": lambda: model.preactivations(Xe),
        # The same C call as preactivations, into the reused buffer (private API).
        "preact_prealloc": lambda: model._handle.call(
            _ffi.csae_model_preactivations, _ffi.f32_ptr(Xe), n, d, _ffi.f32_ptr(buf)),
        "numpy_encode": numpy_encode,
        "numpy_matmul": lambda: Xn @ W,
        "numpy_matmul_prealloc": lambda: np.matmul(Xn, W, out=buf),
    }
    if cfg.get("torch"):
        import torch

        sys.path.insert(0, str(HERE))
        from reference_torch import ReferenceSAE

        torch.set_num_threads(cfg["threads"])
        torch.set_grad_enabled(False)  # = torch.no_grad() for everything below
        ref = ReferenceSAE(d, H, k, weights=(W, bias, model.decoder_w))
        Xt, Xnt, Wt = torch.from_numpy(Xe), torch.from_numpy(Xn), torch.from_numpy(W)
        methods["ref_encode"] = lambda: ref.encode(Xt)
        methods["torch_matmul"] = lambda: Xnt @ Wt
    times, cpu = _time_round_robin(methods, runs)
    emit(dict(times, rows=n, flop=2.0 * n * d * H, threads_note=threads_note,
              cpu={name: sum(c) / sum(times[name]) for name, c in cpu.items()},
              load=os.getloadavg()[0]))


WORKERS = {
    "train_ours": worker_train_ours,
    "train_ref": worker_train_ref,
    "agree": worker_agree,
    "encode": worker_encode,
}


# ---------------------------------------------------------------- driver

class Runner:
    def __init__(self, args):
        self.args = args
        self.log = []  # raw results, for the appendix

    def run(self, kind: str, cfg: dict, timeout: float = 3600) -> dict:
        cfg = dict(cfg, data=self.args.data, threads=self.args.threads)
        env = dict(os.environ, **self.args.worker_env)
        # numpy's bundled OpenBLAS reads this at load time (compressae pins
        # its own BLAS to one thread per worker regardless).
        env["OPENBLAS_NUM_THREADS"] = str(self.args.threads)
        label = f"{kind} " + " ".join(f"{k}={v}" for k, v in cfg.items()
                                      if k not in ("data", "threads"))
        print(f"  running {label} ...", file=sys.stderr, flush=True)
        t = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, str(Path(__file__).resolve()), "--worker", kind, json.dumps(cfg)],
                capture_output=True, text=True, env=env, timeout=timeout)
        except subprocess.TimeoutExpired:
            result = {"error": f"timed out after {timeout:.0f} s"}
        else:
            lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_TAG)]
            if proc.returncode == 0 and lines:
                result = json.loads(lines[-1][len(RESULT_TAG):])
            else:
                tail = proc.stderr.strip().splitlines()[-3:]
                why = (f"killed by signal {-proc.returncode}" if proc.returncode < 0
                       else f"exit status {proc.returncode}")
                result = {"error": why + (": " + " | ".join(tail) if tail else "")}
        result["wall"] = time.perf_counter() - t
        if "error" in result:
            print(f"    FAILED: {result['error']}", file=sys.stderr, flush=True)
        self.log.append({"kind": kind, "cfg": {k: v for k, v in cfg.items() if k != "data"},
                         "result": result})
        return result


def fmt_s(seconds):
    if seconds != seconds:  # NaN
        return "-"
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def fmt_times(res, prefix=""):
    if "error" in res:
        return f"failed ({res['error'][:60]})"
    timed = res["times"][res["warmup"]:]
    m = median(timed)
    if len(timed) >= 3:
        return f"{fmt_s(m)} [{fmt_s(min(timed))}-{fmt_s(max(timed))}]"
    return f"{fmt_s(m)} ({'/'.join(fmt_s(t) for t in timed)})"


def cores_busy(res):
    """CPU seconds per wall second over the timed steps (ideal: the thread count)."""
    if "error" in res or "skipped" in res or "cpu" not in res:
        return "-"
    w = res["warmup"]
    return f"{sum(res['cpu'][w:]) / sum(res['times'][w:]):.2f}"


def step_median(res):
    if "error" in res:
        return float("nan")
    return median(res["times"][res["warmup"]:])


def _mb(mb):
    return f"{mb / 1024:.2f} GB" if mb >= 1024 else f"{mb:.0f} MB"


def fmt_mb(res):
    if "error" in res or "peak_rss_mb" not in res:
        return "-"
    text = _mb(res["peak_rss_mb"])
    if "base_rss_mb" in res:
        text += f" ({_mb(res['base_rss_mb'])})"
    return text


def mem_available_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def machine_info(args):
    import numpy as np
    import compressae

    info = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu"] = next((l.split(":", 1)[1].strip() for l in out.splitlines()
                            if l.startswith("Model name")), platform.processor())
    except OSError:
        info["cpu"] = platform.processor() or "unknown"
    try:
        info["nproc"] = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    except OSError:
        info["nproc"] = str(os.cpu_count())
    try:
        with open("/proc/meminfo") as f:
            info["mem"] = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GB"
    except OSError:
        info["mem"] = "?"
    try:
        blas = compressae.blas_name()
    except AttributeError:
        blas = compressae._ffi.csae_blas_name().decode()
    info["blas"] = blas
    lib = Path(compressae._ffi.library_path)
    info["lib"] = f"{args.lib_origin} (copied to a temporary directory for the run)"
    info["lib_sha"] = hashlib.sha256(lib.read_bytes()).hexdigest()[:12]
    info["lib_mtime"] = _dt.datetime.fromtimestamp(lib.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    info["version"] = compressae._ffi.csae_version().decode()
    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info["numpy_blas"] = f"{cfg.get('name')} {cfg.get('version')}"
    except Exception:
        info["numpy_blas"] = "unknown"
    info["numpy"] = np.__version__
    if have_torch():
        import torch
        info["torch"] = torch.__version__
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
        if torch.backends.mkldnn.is_available():
            info["torch_blas"] += " + oneDNN"
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "Sources"],
                               capture_output=True, text=True).stdout.strip()
        info["git"] = head + (" (Sources/ has uncommitted changes)" if dirty else "")
    except OSError:
        info["git"] = "?"
    return info


def pin_library(tmp: Path) -> dict:
    """Copy the installed compressae package (and its shared library) to tmp
    and make this process and every worker use that copy, so that a
    reinstall during the run (`pip install ./python`) cannot mix versions.
    Returns the environment additions for the workers."""
    spec = importlib.util.find_spec("compressae")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("speed.py: cannot import compressae; install it with "
                 "`pip install ./python` from the repository root")
    src = Path(list(spec.submodule_search_locations)[0])
    shutil.copytree(src, tmp / "compressae", ignore=shutil.ignore_patterns("__pycache__", "data"))
    sys.path.insert(0, str(tmp))
    env = {"PYTHONPATH": os.pathsep.join([str(tmp)] + [p for p in os.environ.get(
        "PYTHONPATH", "").split(os.pathsep) if p])}
    try:
        from compressae import _ffi
    except ImportError as exc:
        sys.exit(f"speed.py: cannot import compressae ({exc}); install it with "
                 "`pip install ./python` from the repository root")
    lib = Path(_ffi.library_path)
    origin = src / lib.relative_to(tmp / "compressae") if (tmp / "compressae") in lib.parents else lib
    env["_origin"] = str(origin)
    if tmp not in lib.parents:  # found via COMPRESSAE_LIBRARY or a .build fallback
        shutil.copy2(lib, tmp / lib.name)
        env["COMPRESSAE_LIBRARY"] = str(tmp / lib.name)
    return env


def main_driver(args):
    import tempfile

    with tempfile.TemporaryDirectory(prefix="compressae-speed-") as tmp:
        args.worker_env = pin_library(Path(tmp))
        args.lib_origin = args.worker_env.pop("_origin")
        run_all(args)


def run_all(args):
    import numpy as np  # noqa: F401
    import compressae  # noqa: F401
    data_file = Path(args.data) / DATA_FILE
    if not data_file.is_file():
        sys.exit(f"speed.py: {data_file} not found (use --data DIR)")
    torch_ok = have_torch()
    if not torch_ok:
        print("speed.py: PyTorch is not installed: the reference parts are skipped "
              "(pip install torch to compare).", file=sys.stderr)

    started = time.time()
    load_start = os.getloadavg()
    info = machine_info(args)
    runner = Runner(args)
    out = []  # markdown lines
    w = out.append
    quick = args.quick
    train_warm, train_steps = 1, (3 if quick else 5)
    ref_steps = 2 if quick else 3
    big_steps_ours = 2
    big_steps_ref = 2
    agree_steps = 5 if quick else 20
    enc_runs = 3 if quick else 5

    w(f"# compressae speed benchmark ({'quick' if quick else ('full' if args.full else 'default')})")
    w("")
    w(f"- date: {_dt.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    w(f"- machine: {info['cpu']}, nproc {info['nproc']}, {info['mem']} RAM; "
      "**shared with other work** (builds, tests) while this ran: timings are noisy")
    w(f"- load average at start: {' / '.join(f'{v:.2f}' for v in load_start)} (1/5/15 min)")
    w(f"- compressae {info['version']}, repo HEAD {info['git']}; library {info['lib']} "
      f"(sha256 {info['lib_sha']}, built {info['lib_mtime']})")
    w(f"- compressae BLAS (csae_blas_name): **{info['blas']}**")
    w(f"- numpy {info['numpy']} with its bundled BLAS: {info['numpy_blas']}")
    if torch_ok:
        w(f"- torch {info['torch']} (CPU; BLAS: {info['torch_blas']})")
    else:
        w("- torch: not installed (reference columns skipped)")
    w(f"- threads: {args.threads} for every method (torch.set_num_threads, "
      "fit(num_threads=), csae_set_num_threads for encode when the library has it, "
      "OPENBLAS_NUM_THREADS for numpy)")
    w(f"- data: {data_file} (117,659 x 384 float16 -> float32); d=768: rows [x, x @ Q], "
      f"Q a fixed random 384x384 rotation (numpy seed {ROTATION_SEED})")
    w(f"- command: `python3 benchmarks/speed.py {shlex.join(sys.argv[1:])}`")
    if args.note:
        w(f"- note: {args.note}")
    w("")

    # ------------------------------------------------------------ 1. train
    if "train" in args.sections:
        print("1. training step time", file=sys.stderr)
        rows = []
        batches = [SMALL_BATCH] + ([] if quick else [BIG_BATCH])
        for b in batches:
            for d in DIMS:
                for k in KS:
                    big = b == BIG_BATCH
                    ours = runner.run("train_ours", {
                        "d": d, "k": k, "batch": b, "warmup": 0 if big else train_warm,
                        "steps": big_steps_ours if big else train_steps})
                    ref = None
                    if not torch_ok:
                        ref = {"skipped": "skipped (torch not installed)"}
                    elif quick and k != 32:
                        ref = {"skipped": "not run (--quick: k=32 only)"}
                    elif big and not args.full and not (d == 384 and k == 32):
                        ref = {"skipped": "not run (--full runs it)"}
                    elif big and mem_available_gb() < args.ref_big_min_gb:
                        ref = {"skipped": f"skipped: only {mem_available_gb():.1f} GB available "
                               f"(needs ~15 GB; --ref-big-min-gb {args.ref_big_min_gb})"}
                    else:
                        ref = runner.run("train_ref", {
                            "d": d, "k": k, "batch": b, "warmup": 0 if big else train_warm,
                            "steps": big_steps_ref if big else ref_steps}, timeout=3600)
                    rows.append((b, d, k, ours, ref))

        w("## 1. Training step time (h = 4096, Adam, shuffle off)")
        w("")
        w(f"Seconds per optimiser step: median [min-max] of the timed steps, or the "
          "timed steps themselves when fewer than 3. compressae: "
          f"{train_steps} steps at batch {SMALL_BATCH} after 1 warm-up step"
          + ("" if quick else f"; {big_steps_ours} steps at batch {BIG_BATCH:,}, no warm-up "
             "(median of 2 = their mean; both shown)")
          + ". Each step timed from the progress callback (the time between consecutive "
          "callbacks; the first step also holds fit's set-up). Reference "
          f"(`train_step`, timed around the call): {ref_steps} steps at batch {SMALL_BATCH} "
          "after 1 warm-up"
          + (" (k=32 only: the reference's dense step hardly depends on k)" if quick else
             f"; at batch {BIG_BATCH:,} only {big_steps_ref} steps, no warm-up, median of 2 "
             "(= their mean; both shown), and only d=384 k=32 unless --full")
          + f". Batch {SMALL_BATCH} uses distinct consecutive batches"
          + ("" if quick else f"; batch {BIG_BATCH:,} repeats the first {BIG_BATCH:,} rows every step")
          + ". Peak RSS: VmHWM (peak resident set) at the end of the fresh process that ran the configuration "
          "(absolute); in brackets the same process's peak after imports and loading its "
          "rows (float32), before the model existed: the idle baseline. Cores busy: process "
          "CPU seconds per wall-clock second over the timed steps (at most the thread count; "
          "lower means serial phases, or other work taking the cores).")
        w("")
        w("| batch | d | k | compressae s/step | reference s/step | speedup (ref/ours) "
          "| cores busy (ours / ref) | compressae peak RSS (idle) | reference peak RSS (idle) |")
        w("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for b, d, k, ours, ref in rows:
            if "skipped" in ref:
                ref_t, sp, ref_mb = ref["skipped"], "-", "-"
            else:
                ref_t = fmt_times(ref)
                ratio = step_median(ref) / step_median(ours)
                sp = f"**{ratio:.1f}x**" if ratio == ratio else "-"
                ref_mb = fmt_mb(ref)
            w(f"| {b:,} | {d} | {k} | {fmt_times(ours)} | {ref_t} | {sp} | {cores_busy(ours)} / {cores_busy(ref)} | {fmt_mb(ours)} | {ref_mb} |")
        w("")

        # The headline pair again, alternating fresh processes of each side, so
        # that a slow spell of the shared machine hits both sides alike.
        if torch_ok and args.pair_rounds > 0:
            print("1b. interleaved rounds, batch 4096, d=384, k=32", file=sys.stderr)
            pair = {"d": 384, "k": 32, "batch": SMALL_BATCH, "warmup": train_warm}
            rounds = []
            for _ in range(args.pair_rounds):
                ours = runner.run("train_ours", {**pair, "steps": train_steps})
                ref = runner.run("train_ref", {**pair, "steps": ref_steps}, timeout=3600)
                rounds.append((ours, ref))
            w(f"### 1b. Batch {SMALL_BATCH}, d=384, k=32: {args.pair_rounds} interleaved rounds")
            w("")
            w(f"Each round runs a fresh compressae process ({train_steps} timed steps after 1 warm-up) "
              f"and then a fresh reference process ({ref_steps} timed steps after 1 warm-up), as in the "
              "table above; the rounds alternate so that load from other work falls on both sides. "
              "Speedup of a round = the reference's median step / ours; pooled = median of all the "
              "reference's timed steps / median of all of ours.")
            w("")
            w("| round | compressae s/step | reference s/step | speedup |")
            w("|---:|---:|---:|---:|")
            ratios, all_ours, all_ref = [], [], []
            for r, (ours, ref) in enumerate(rounds):
                ratio = step_median(ref) / step_median(ours)
                ratios.append(ratio)
                if "error" not in ours and "error" not in ref:
                    all_ours += ours["times"][ours["warmup"]:]
                    all_ref += ref["times"][ref["warmup"]:]
                w(f"| {r + 1} | {fmt_times(ours)} | {fmt_times(ref)} | {ratio:.1f}x |")
            if all_ours and all_ref:
                w(f"| median of rounds | | | **{median(ratios):.1f}x** (lowest {min(ratios):.1f}x) |")
                w(f"| pooled | {median(all_ours):.3f} | {median(all_ref):.3f} | "
                  f"**{median(all_ref) / median(all_ours):.1f}x** |")
            w("")

    # ------------------------------------------------------------ 2. agree
    if "agree" in args.sections:
        print("2. loss agreement", file=sys.stderr)
        w(f"## 2. Loss agreement (d=384, h=4096, k=32, batch {SMALL_BATCH}, lr 1e-3, "
          f"{agree_steps} steps)")
        w("")
        if not torch_ok:
            w("skipped: torch not installed")
        else:
            res = runner.run("agree", {"d": 384, "k": 32, "batch": SMALL_BATCH,
                                       "steps": agree_steps, "lr": 1e-3})
            if "error" in res:
                w(f"failed: {res['error']}")
            else:
                w("Both start from the compressae model's initial weights (seed 0) and see "
                  "the same batches in the same order (rows 0..N*4096, shuffle off). "
                  "Loss = Cosine + Cosine_4k / 8 of each batch before its update.")
                w("")
                w("| step | compressae loss | reference loss | abs diff |")
                w("|---:|---:|---:|---:|")
                diffs = []
                for i, (a, r) in enumerate(zip(res["ours"], res["ref"]), 1):
                    diffs.append(abs(a - r))
                    w(f"| {i} | {a:.6f} | {r:.6f} | {abs(a - r):.2e} |")
                w("")
                w(f"max |difference| = **{max(diffs):.2e}** (last step {diffs[-1]:.2e}).")
                wt = res["weights"]
                w("Weights after the last step, max |ours - reference| (max |reference|): "
                  + ", ".join(f"{n} {v[0]:.2e} ({v[1]:.2e})" for n, v in wt.items()) + ".")
            w("")

    # ------------------------------------------------------------ 3/4. encode
    if "encode" in args.sections:
        print("3. encoder throughput, 4. GEMM", file=sys.stderr)
        enc = {d: runner.run("encode", {"d": d, "k": 32, "rows": args.encode_rows,
                                        "runs": enc_runs, "train_steps": args.encode_train_steps,
                                        "torch": torch_ok})
               for d in DIMS}
        n = args.encode_rows
        w(f"## 3. Encoder throughput (h=4096, k=32, {n:,} rows, vectors/s)")
        w("")
        w(f"Median of {enc_runs} calls after 1 warm-up call, the calls of all methods "
          f"interleaved round-robin (so that load from other processes hits all alike), the "
          f"same {n:,} rows (the last rows of the data set) for every method; the model was first trained for "
          f"{args.encode_train_steps} steps at batch {SMALL_BATCH} so that the top-k sees "
          "trained pre-activations. The public `encode` allocates its (n, k) index and value "
          f"outputs on every call (small); the public `preactivations` allocates its (n, 4096) "
          f"float32 output on every call ({n * H * 4 / 1e6:.0f} MB, page faults included in "
          "its time): that is the yardstick asked for. The extra 'pre-allocated' row is the "
          "same C call into one reused, already touched buffer (private `_handle.call`), "
          "i.e. the GEMM + normalisation + bias alone; both preactivations rows also write "
          "the whole dense n x 4096 result to memory, which encode never does, so they are "
          "not a strict lower bound for encode: the numpy matmul row of section 4 is the "
          "pure-GEMM yardstick. Cores busy = CPU seconds / wall seconds. compressae threads: "
          + ", ".join(f"d={d}: {enc[d].get('threads_note', '?')}" for d in DIMS) + ".")
        w("")

        def vps(res, key):
            if "error" in res:
                return "failed"
            if key not in res:
                return "skipped" if key in ("ref_encode", "torch_matmul") else "-"
            return f"{res['rows'] / median(res[key]):,.0f}"

        def busy(res, key):
            if "error" in res or key not in res.get("cpu", {}):
                return "-"
            return f"{res['cpu'][key]:.2f}"

        w("| method | d=384 vectors/s | cores busy | d=768 vectors/s | cores busy |")
        w("|---|---:|---:|---:|---:|")
        methods = [
            ("encode", "compressae `encode` (normalise + GEMM + bias + top-k)"),
            ("preact", "compressae `preactivations` (public API, allocates output)"),
            ("preact_prealloc", "compressae preactivations, C call, pre-allocated output"),
            ("ref_encode", "reference encode (torch, no_grad; dense output)"),
            ("numpy_encode", "numpy (normalise, matmul, bias, argpartition, take_along_axis)"),
        ]
        for key, name in methods:
            w(f"| {name} | {vps(enc[384], key)} | {busy(enc[384], key)} "
              f"| {vps(enc[768], key)} | {busy(enc[768], key)} |")

        def ratio(res, a, b):
            if "error" in res or a not in res or b not in res:
                return "-"
            return f"**{median(res[b]) / median(res[a]):.2f}**"

        for name, other in [
                ("ratio encode / preactivations (public; target >= 0.8)", "preact"),
                ("ratio encode / preactivations (pre-allocated)", "preact_prealloc"),
                ("ratio encode / numpy `Xn @ W` alone (section 4)", "numpy_matmul"),
                ("speedup encode vs reference encode", "ref_encode"),
                ("speedup encode vs numpy encode", "numpy_encode")]:
            w(f"| {name} | {ratio(enc[384], 'encode', other)} | | "
              f"{ratio(enc[768], 'encode', other)} | |")
        w("")

        w(f"## 4. sgemm GFLOP/s (encoder shape: {n:,} x d times d x 4096)")
        w("")
        w(f"GFLOP/s = 2 n d h / median time. compressae's number includes the row "
          f"normalisation and the bias (O(n (d + h)), small). compressae BLAS: "
          f"**{info['blas']}** (the system library, loaded with dlopen, pinned to one "
          f"thread per compressae worker); numpy uses its own bundled OpenBLAS "
          f"({info['numpy_blas']}) with {args.threads} threads"
          + (f"; torch uses {info['torch_blas']}" if torch_ok else "") + ".")
        w("")

        def gf(res, key):
            if "error" in res:
                return "failed"
            if key not in res:
                return "skipped" if key == "torch_matmul" else "-"
            return f"{res['flop'] / median(res[key]) / 1e9:.1f}"

        w("| product | d=384 | d=768 |")
        w("|---|---:|---:|")
        for key, name in [
            ("preact", "compressae `preactivations` (public API, allocates output)"),
            ("preact_prealloc", "compressae preactivations, pre-allocated output"),
            ("encode", "compressae `encode` (GEMM-equivalent rate, incl. top-k)"),
            ("numpy_matmul", "numpy `Xn @ W` (allocates output)"),
            ("numpy_matmul_prealloc", "numpy `matmul(Xn, W, out=)` (pre-allocated)"),
            ("torch_matmul", "torch `Xn @ W` (allocates output)"),
        ]:
            w(f"| {name} | {gf(enc[384], key)} | {gf(enc[768], key)} |")
        w("")

    elapsed = time.time() - started
    w(f"Total run time {elapsed / 60:.1f} min; load average at the end: "
      f"{' / '.join(f'{v:.2f}' for v in os.getloadavg())}.")
    w("")
    w("<details><summary>Raw per-configuration results (seconds; JSON)</summary>")
    w("")
    w("```")
    for entry in runner.log:
        r = dict(entry["result"])
        for key in ("times", "losses", "ours", "ref"):
            if isinstance(r.get(key), list):
                r[key] = [round(v, 5) for v in r[key]]
        for key, v in list(r.items()):
            if isinstance(v, float):
                r[key] = round(v, 4)
            elif isinstance(v, list) and v and isinstance(v[0], float):
                r[key] = [round(x, 5) for x in v]
        w(json.dumps({"kind": entry["kind"], "cfg": entry["cfg"], "result": r}))
    w("```")
    w("</details>")
    w("")

    text = "\n".join(out)
    print(text)
    out_path = Path(args.out) if args.out else (
        REPO / "benchmarks" / "results"
        / f"speed-{_dt.date.today().isoformat()}{'-quick' if quick else ''}.md")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    print(f"\nwritten to {out_path}", file=sys.stderr)


def parse_args(argv=None):
    cores = os.cpu_count() or 1
    p = argparse.ArgumentParser(
        description="Speed of compressae vs the PyTorch reference (benchmarks/reference_torch.py) "
                    "and numpy: training step, loss agreement, encode throughput, sgemm GFLOP/s. "
                    "Prints markdown tables and writes them to --out. Each configuration runs in "
                    "a fresh subprocess (peak RSS per configuration).",
        epilog="Default run: about 15 min on 2 idle cores, 30 min when other work takes "
               "half of them (the reference at batch 100,000 needs ~15 GB and 1-3 min per "
               "step); --quick: 2 min idle, 5 min loaded. Without torch the reference parts "
               "print 'skipped' and the script exits 0.")
    p.add_argument("--data", default=str(REPO.parent / "shared" / "data"),
                   help=f"directory holding {DATA_FILE} (default: ../shared/data from the repo root)")
    p.add_argument("--quick", action="store_true",
                   help="batch 4096 only (no batch 100,000), fewer steps and runs")
    p.add_argument("--full", action="store_true",
                   help="run the reference at batch 100,000 for every d and k (default: only "
                        "d=384 k=32; each ~17 GB and several minutes)")
    p.add_argument("--threads", type=int, default=cores,
                   help=f"threads for compressae training, torch and numpy (default: all cores, {cores})")
    p.add_argument("--out", default=None,
                   help="markdown output file (default: benchmarks/results/speed-<date>.md, "
                        "speed-<date>-quick.md with --quick)")
    p.add_argument("--sections", default="train,agree,encode",
                   help="comma-separated subset of train,agree,encode (default: all)")
    p.add_argument("--encode-rows", type=int, default=None,
                   help="rows encoded per timed call (default 20000, 10000 with --quick)")
    p.add_argument("--encode-train-steps", type=int, default=None,
                   help="training steps before the encode timings (default 10, 2 with --quick)")
    p.add_argument("--ref-big-min-gb", type=float, default=16.0,
                   help="skip the reference at batch 100,000 when less memory is available "
                        "(GB, default 16; it peaked at 15 GB here)")
    p.add_argument("--pair-rounds", type=int, default=None,
                   help="interleaved rounds of the batch 4096, d=384, k=32 pair after the training "
                        "table (default 3, 2 with --quick; 0 skips them)")
    p.add_argument("--note", default=None,
                   help="a line of text for the output's header (e.g. how the library was built)")
    p.add_argument("--worker", nargs=2, metavar=("KIND", "JSON"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is None:
        if args.threads < 1:
            p.error("--threads must be >= 1")
        args.sections = {s.strip() for s in args.sections.split(",") if s.strip()}
        bad = args.sections - {"train", "agree", "encode"}
        if bad:
            p.error(f"unknown sections: {', '.join(sorted(bad))}")
        if args.pair_rounds is None:
            args.pair_rounds = 2 if args.quick else 3
        if args.encode_train_steps is None:
            args.encode_train_steps = 2 if args.quick else 10
        if args.encode_rows is None:
            args.encode_rows = 10_000 if args.quick else 20_000
        if args.encode_rows > 117_659:
            p.error("--encode-rows must be <= 117659")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        kind, cfg = args.worker
        WORKERS[kind](json.loads(cfg))
        return
    main_driver(args)


if __name__ == "__main__":
    main()
