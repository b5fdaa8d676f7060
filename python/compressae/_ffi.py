"""Low-level ctypes mirror of the ``csae_`` C ABI (include/compressae.h).

One Python attribute per C function, each with explicit ``argtypes`` and
``restype``, plus the ABI's structs, callback type and status codes. Nothing
here owns memory or raises on a bad status: that is ``_handle``'s job. Use
this module only to reach a function the public classes do not wrap.

Library lookup order (the first file that exists wins):

1. the path in the environment variable ``COMPRESSAE_LIBRARY``;
2. ``compressae/lib/libCompresSAE.so`` (put there by ``pip install``);
3. ``<repo>/.build/release/libCompresSAE.so`` (a development checkout where
   ``swift build -c release`` was run).
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_char_p,
    c_double,
    c_float,
    c_int32,
    c_int64,
    c_uint64,
    c_void_p,
)
from pathlib import Path

# The Swift runtime installs a crash backtracer (signal handlers that print a
# Swift backtrace) into whatever process loads it, unless told not to before
# the library is loaded. A Python process must keep its own fault handling.
os.environ.setdefault("SWIFT_BACKTRACE", "enable=no")

#: ABI version this module was written against (CSAE_ABI_VERSION).
ABI_VERSION = 5

# Status codes (enum csae_status).
CSAE_OK = 0
CSAE_ERR_INVALID_ARGUMENT = 1
CSAE_ERR_INVALID_HANDLE = 2
CSAE_ERR_IO = 3
CSAE_ERR_FORMAT = 4
CSAE_ERR_CANCELLED = 5
CSAE_ERR_OUT_OF_MEMORY = 6
CSAE_ERR_BUSY = 7

# Retrieval modes (enum csae_index_mode).
CSAE_INDEX_SPARSE = 0
CSAE_INDEX_RECONSTRUCTED = 1

# Storage of an index's codes (enum csae_index_storage).
CSAE_STORAGE_STANDARD = 0
CSAE_STORAGE_COMPACT = 1

# Encoder initialisation (enum csae_init).
CSAE_INIT_REFERENCE = 0
CSAE_INIT_TIED = 1

# Learning-rate decay (enum csae_lr_decay).
CSAE_LR_CONSTANT = 0
CSAE_LR_COSINE = 1
CSAE_LR_LINEAR = 2
CSAE_LR_PLATEAU = 3

STATUS_NAMES = {
    CSAE_OK: "CSAE_OK",
    CSAE_ERR_INVALID_ARGUMENT: "CSAE_ERR_INVALID_ARGUMENT",
    CSAE_ERR_INVALID_HANDLE: "CSAE_ERR_INVALID_HANDLE",
    CSAE_ERR_IO: "CSAE_ERR_IO",
    CSAE_ERR_FORMAT: "CSAE_ERR_FORMAT",
    CSAE_ERR_CANCELLED: "CSAE_ERR_CANCELLED",
    CSAE_ERR_OUT_OF_MEMORY: "CSAE_ERR_OUT_OF_MEMORY",
    CSAE_ERR_BUSY: "CSAE_ERR_BUSY",
}

#: The opaque ``csae_model *``. A plain void pointer: Python never looks inside.
csae_model_p = c_void_p

#: The opaque ``csae_index *``.
csae_index_p = c_void_p

#: ``int32_t (*csae_progress_fn)(void *user_data, int64_t step, int64_t total, float loss)``
csae_progress_fn = CFUNCTYPE(c_int32, c_void_p, c_int64, c_int64, c_float)


class csae_train_params(Structure):
    """``struct csae_train_params``; start from ``csae_train_default_params()``."""

    _fields_ = [
        ("batch_size", c_int64),
        ("epochs", c_int64),
        ("learning_rate", c_double),
        ("beta1", c_double),
        ("beta2", c_double),
        ("eps", c_double),
        ("seed", c_uint64),
        ("shuffle", c_int32),
        ("num_threads", c_int32),
        ("progress", csae_progress_fn),
        ("user_data", c_void_p),
        ("dead_latent_window", c_int64),
        ("warmup_steps", c_int64),
        ("lr_decay", c_int32),
        ("min_lr_ratio", c_double),
        ("validation_fraction", c_double),
        ("patience", c_int64),
        ("tolerance", c_double),
        ("plateau_factor", c_double),
        ("plateau_reductions", c_int64),
        ("sparse_similarity_weight", c_double),
        ("similarity_temperature", c_double),
        ("similarity_rows", c_int64),
    ]


class csae_losses(Structure):
    """``struct csae_losses``: the seven loss values of one batch."""

    _fields_ = [
        ("l2", c_float),
        ("l2_4k", c_float),
        ("l1", c_float),
        ("l0", c_float),
        ("cosine", c_float),
        ("cosine_4k", c_float),
        ("loss", c_float),
    ]


_f32_p = POINTER(c_float)
_i32_p = POINTER(c_int32)
_i64_p = POINTER(c_int64)
_model_pp = POINTER(csae_model_p)
_index_pp = POINTER(csae_index_p)

# name -> (restype, argtypes). Kept as data so that the table reads like the
# header and the loader can report every missing symbol at once.
_SIGNATURES = {
    "csae_abi_version": (c_int32, []),
    "csae_version": (c_char_p, []),
    "csae_last_error": (c_char_p, []),
    "csae_blas_name": (c_char_p, []),
    "csae_train_default_params": (csae_train_params, []),
    "csae_train_reference_params": (csae_train_params, []),
    "csae_model_create": (c_int32, [c_int64, c_int64, c_int64, c_uint64, c_int32, _model_pp]),
    "csae_model_create_from_weights": (
        c_int32,
        [c_int64, c_int64, c_int64, _f32_p, _f32_p, _f32_p, _model_pp],
    ),
    "csae_model_free": (None, [csae_model_p]),
    "csae_model_load": (c_int32, [c_char_p, c_int64, _model_pp]),
    "csae_model_save": (c_int32, [csae_model_p, c_char_p]),
    "csae_model_get_shape": (c_int32, [csae_model_p, _i64_p, _i64_p, _i64_p]),
    "csae_model_set_k": (c_int32, [csae_model_p, c_int64]),
    "csae_model_copy_weights": (
        c_int32,
        [csae_model_p, _f32_p, c_int64, _f32_p, c_int64, _f32_p, c_int64],
    ),
    "csae_model_train": (
        c_int32,
        [csae_model_p, _f32_p, c_int64, c_int64, POINTER(csae_train_params)],
    ),
    "csae_model_history_length": (c_int32, [csae_model_p, _i64_p]),
    "csae_model_copy_history": (c_int32, [csae_model_p, _f32_p, c_int64]),
    "csae_model_copy_dead_latent_history": (c_int32, [csae_model_p, _f32_p, c_int64]),
    "csae_model_validation_history_length": (c_int32, [csae_model_p, _i64_p]),
    "csae_model_copy_validation_history": (c_int32, [csae_model_p, _f32_p, c_int64]),
    "csae_model_encode": (
        c_int32,
        [csae_model_p, _f32_p, c_int64, c_int64, c_int64, _i32_p, _f32_p],
    ),
    "csae_model_refit": (
        c_int32,
        [csae_model_p, _f32_p, c_int64, c_int64, c_int64, _i32_p, _f32_p],
    ),
    "csae_model_decode": (
        c_int32,
        [csae_model_p, _i32_p, _f32_p, c_int64, c_int64, _f32_p],
    ),
    "csae_model_preactivations": (
        c_int32,
        [csae_model_p, _f32_p, c_int64, c_int64, _f32_p],
    ),
    "csae_model_loss_and_gradients": (
        c_int32,
        [
            csae_model_p,
            _f32_p,
            c_int64,
            c_int64,
            POINTER(csae_losses),
            _f32_p,
            _f32_p,
            _f32_p,
        ],
    ),
    # -- CABI/IndexExports.swift --
    "csae_set_num_threads": (c_int32, [c_int32]),
    "csae_get_num_threads": (c_int32, []),
    "csae_index_create": (c_int32, [csae_model_p, c_int32, c_int32, _index_pp]),
    "csae_index_free": (None, [csae_index_p]),
    "csae_index_add_codes": (c_int32, [csae_index_p, _i32_p, _f32_p, c_int64, c_int64]),
    "csae_index_add_dense": (c_int32, [csae_index_p, _f32_p, c_int64, c_int64]),
    "csae_index_search_dense": (
        c_int32,
        [csae_index_p, _f32_p, c_int64, c_int64, c_int64, c_int64, c_int32, _f32_p, _i64_p],
    ),
    "csae_index_search_codes": (
        c_int32,
        [csae_index_p, _i32_p, _f32_p, c_int64, c_int64, c_int64, c_int32, _f32_p, _i64_p],
    ),
    "csae_index_get_info": (
        c_int32,
        [csae_index_p, _i64_p, _i64_p, _i64_p, _i32_p, _i32_p],
    ),
    "csae_index_save": (c_int32, [csae_index_p, c_char_p]),
    "csae_index_load": (c_int32, [c_char_p, csae_model_p, _index_pp]),
}

LIBRARY_NAME = "libCompresSAE.so" if sys.platform != "darwin" else "libCompresSAE.dylib"


def candidate_paths() -> list[Path]:
    """Where the shared library is looked for, in order (see module docstring)."""
    paths = []
    env = os.environ.get("COMPRESSAE_LIBRARY")
    if env:
        paths.append(Path(env))
    here = Path(__file__).resolve().parent
    paths.append(here / "lib" / LIBRARY_NAME)
    # python/compressae/_ffi.py -> the repository root is two levels up.
    paths.append(here.parent.parent / ".build" / "release" / LIBRARY_NAME)
    return paths


def _load() -> tuple[ctypes.CDLL, Path]:
    env = os.environ.get("COMPRESSAE_LIBRARY")
    tried = []
    for path in candidate_paths():
        if not path.is_file():
            tried.append(f"{path} (not found)")
            # An explicit choice that does not exist is a mistake, not a hint.
            if env and path == Path(env):
                raise ImportError(
                    f"COMPRESSAE_LIBRARY={env!r} does not name an existing file"
                )
            continue
        try:
            # CDLL (not PyDLL) releases the GIL during every call, so model
            # calls from several Python threads really run concurrently.
            return ctypes.CDLL(str(path)), path
        except OSError as exc:
            raise ImportError(f"cannot load the compressae library {path}: {exc}") from exc
    raise ImportError(
        "the compressae shared library was not found; install the package with "
        "`pip install ./python` from the repository root (it builds the Swift "
        "library), or point COMPRESSAE_LIBRARY at libCompresSAE.so. Tried:\n  "
        + "\n  ".join(tried)
    )


lib, library_path = _load()


def _bind() -> None:
    missing = [name for name in _SIGNATURES if not hasattr(lib, name)]
    if missing:
        raise ImportError(
            f"{library_path} lacks the C functions {', '.join(missing)}: "
            "the library and the Python package are from different versions"
        )
    for name, (restype, argtypes) in _SIGNATURES.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


_bind()

# One module attribute per C function (typed by _bind above).
csae_abi_version = lib.csae_abi_version
csae_version = lib.csae_version
csae_last_error = lib.csae_last_error
csae_blas_name = lib.csae_blas_name
csae_train_default_params = lib.csae_train_default_params
csae_train_reference_params = lib.csae_train_reference_params
csae_model_create = lib.csae_model_create
csae_model_create_from_weights = lib.csae_model_create_from_weights
csae_model_free = lib.csae_model_free
csae_model_load = lib.csae_model_load
csae_model_save = lib.csae_model_save
csae_model_get_shape = lib.csae_model_get_shape
csae_model_set_k = lib.csae_model_set_k
csae_model_copy_weights = lib.csae_model_copy_weights
csae_model_train = lib.csae_model_train
csae_model_history_length = lib.csae_model_history_length
csae_model_copy_history = lib.csae_model_copy_history
csae_model_copy_dead_latent_history = lib.csae_model_copy_dead_latent_history
csae_model_validation_history_length = lib.csae_model_validation_history_length
csae_model_copy_validation_history = lib.csae_model_copy_validation_history
csae_model_encode = lib.csae_model_encode
csae_model_refit = lib.csae_model_refit
csae_model_decode = lib.csae_model_decode
csae_model_preactivations = lib.csae_model_preactivations
csae_model_loss_and_gradients = lib.csae_model_loss_and_gradients
csae_set_num_threads = lib.csae_set_num_threads
csae_get_num_threads = lib.csae_get_num_threads
csae_index_create = lib.csae_index_create
csae_index_free = lib.csae_index_free
csae_index_add_codes = lib.csae_index_add_codes
csae_index_add_dense = lib.csae_index_add_dense
csae_index_search_dense = lib.csae_index_search_dense
csae_index_search_codes = lib.csae_index_search_codes
csae_index_get_info = lib.csae_index_get_info
csae_index_save = lib.csae_index_save
csae_index_load = lib.csae_index_load

if csae_abi_version() != ABI_VERSION:
    raise ImportError(
        f"{library_path} implements C ABI version {csae_abi_version()}, "
        f"but this Python package needs version {ABI_VERSION}; rebuild and "
        "reinstall the package from the same source tree as the library"
    )


def last_error() -> str:
    """This thread's last error message from the library ('' if none)."""
    raw = csae_last_error()
    return raw.decode("utf-8", "replace") if raw else ""


def f32_ptr(array) -> ctypes._Pointer:
    """``float *`` to the data of a float32 C-contiguous numpy array."""
    return array.ctypes.data_as(_f32_p)


def i32_ptr(array) -> ctypes._Pointer:
    """``int32_t *`` to the data of an int32 C-contiguous numpy array."""
    return array.ctypes.data_as(_i32_p)


def i64_ptr(array) -> ctypes._Pointer:
    """``int64_t *`` to the data of an int64 C-contiguous numpy array."""
    return array.ctypes.data_as(_i64_p)
