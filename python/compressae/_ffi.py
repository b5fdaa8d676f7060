"""Low-level ctypes mirror of the ``csae_`` C ABI (include/compressae.h).

One Python attribute per C function, each with explicit ``argtypes`` and
``restype``, plus the ABI's structs, callback type and status codes, all taken
from ``_abi.py``, which scripts/generate-bindings generates from the header
(scripts/test fails when it is stale). Nothing here owns memory or raises on
a bad status: that is ``_handle``'s job. Use this module only to reach a
function the public classes do not wrap.

Library lookup order (the first file that exists wins):

1. the path in the environment variable ``COMPRESSAE_LIBRARY``;
2. ``compressae/lib/libCompresSAE.so`` (put there by ``pip install``);
3. ``<repo>/.build/release/libCompresSAE.so`` (a development checkout where
   ``swift build -c release`` was run).

The library finds its BLAS the first time it needs one: ``CSAE_BLAS_LIBRARY``,
then the system's OpenBLAS (``libopenblas.so.0``, ...), then
``CSAE_BLAS_FALLBACK_LIBRARY``, which this module sets to the
``scipy-openblas32`` package's library when that is installed and the
variable is unset.
"""

from __future__ import annotations

import ctypes
import os
import sys
from ctypes import POINTER, c_float, c_int32, c_int64, c_void_p
from pathlib import Path

# The Swift runtime installs a crash backtracer (signal handlers that print a
# Swift backtrace) into whatever process loads it, unless told not to before
# the library is loaded. A Python process must keep its own fault handling.
os.environ.setdefault("SWIFT_BACKTRACE", "enable=no")

from . import _abi
# The ABI's constants, enums, callback types and structs, generated from
# include/compressae.h (scripts/generate-bindings): CSAE_OK, CSAE_ERR_*,
# CSAE_INDEX_*, CSAE_STORAGE_*, CSAE_INIT_*, CSAE_LR_*, csae_progress_fn,
# csae_train_params, csae_losses, ...
from ._abi import *  # noqa: F401,F403

#: ABI version this module was generated from (CSAE_ABI_VERSION).
ABI_VERSION = _abi.CSAE_ABI_VERSION

#: status code -> its enum name.
STATUS_NAMES = _abi.CSAE_STATUS_NAMES

#: The opaque ``csae_model *``. A plain void pointer: Python never looks inside.
csae_model_p = c_void_p

#: The opaque ``csae_index *``.
csae_index_p = c_void_p

_f32_p = POINTER(c_float)
_i32_p = POINTER(c_int32)
_i64_p = POINTER(c_int64)

# name -> (restype, argtypes), every function of the header.
_SIGNATURES = {name: (restype, [ctype for _, ctype in params])
               for name, (restype, params) in _abi.FUNCTIONS.items()}

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


def pip_blas_library() -> str | None:
    """The OpenBLAS of the ``scipy-openblas32`` package, when it is installed.

    Found without importing that package, a dependency of this one on Linux
    x86_64: it ships an OpenBLAS that picks its kernels for the CPU at run
    time, with every symbol prefixed (``scipy_cblas_sgemm``) so that it
    cannot clash with another BLAS in the process. numpy's bundled OpenBLAS
    is not used: it is ILP64 (64-bit integer arguments), and the library
    sets its BLAS to one thread, which would change numpy's own matmul.
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("scipy_openblas32")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted((Path(location) / "lib").glob("libscipy_openblas*.so*"))
        if found:
            return str(found[0])
    return None


# The library looks for a BLAS the first time it needs one: the system's
# OpenBLAS (or CSAE_BLAS_LIBRARY) first, then CSAE_BLAS_FALLBACK_LIBRARY.
if "CSAE_BLAS_FALLBACK_LIBRARY" not in os.environ:
    _pip_blas = pip_blas_library()
    if _pip_blas is not None:
        os.environ["CSAE_BLAS_FALLBACK_LIBRARY"] = _pip_blas


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

# One module attribute per C function (typed by _bind above), as in the header.
for _name in _SIGNATURES:
    globals()[_name] = getattr(lib, _name)
del _name

if csae_abi_version() != ABI_VERSION:
    raise ImportError(
        f"{library_path} implements C ABI version {csae_abi_version()}, "
        f"but this Python package needs version {ABI_VERSION}; rebuild and "
        "reinstall the package from the same source tree as the library"
    )


def _params(struct, init, *extra):
    params = struct()
    status = init(ctypes.byref(params), ctypes.sizeof(struct), *extra)
    if status != CSAE_OK:
        raise ImportError(f"{init.__name__} failed ({STATUS_NAMES.get(status, status)}): {last_error()}")
    return params


# The header's static inline helpers, over csae_*_init with this
# module's struct sizes (the library fills the fields these structs have).
def csae_train_default_params() -> csae_train_params:
    """``csae_train_params`` of the default recipe, as the C helper of that name."""
    return _params(csae_train_params, csae_train_params_init, CSAE_RECIPE_DEFAULT)


def csae_train_reference_params() -> csae_train_params:
    """``csae_train_params`` of the PyTorch reference's recipe."""
    return _params(csae_train_params, csae_train_params_init, CSAE_RECIPE_REFERENCE)


def csae_encode_default_params() -> csae_encode_params:
    """``csae_encode_params`` holding the defaults (k = 0: the model's k)."""
    return _params(csae_encode_params, csae_encode_params_init)


def csae_search_default_params() -> csae_search_params:
    """``csae_search_params`` holding the defaults (n = 100)."""
    return _params(csae_search_params, csae_search_params_init)


def csae_row_source_defaults() -> csae_row_source:
    """``csae_row_source`` holding the defaults (kind CSAE_SOURCE_ROWS, no callbacks)."""
    return _params(csae_row_source, csae_row_source_init)


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
