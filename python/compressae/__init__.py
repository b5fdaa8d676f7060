"""compressae: embedding compression with a learned top-k sparse autoencoder.

Python bindings of the CompresSAE library (Kasalický et al., RecSys 2025):
dense embeddings in, ``k``-sparse codes out, trained on your own data.

>>> import numpy as np, compressae
>>> X = np.random.default_rng(0).standard_normal((1000, 64)).astype(np.float32)
>>> model = compressae.CompresSAE(64, latent_dim=512, k=8).fit(X, batch_size=256)
>>> codes = model.encode(X)            # codes.indices, codes.values: (1000, 8)
>>> X_hat = model.decode(codes)        # (1000, 64) float32
>>> index = compressae.SparseIndex(model, mode="sparse")
>>> index.add(codes)
>>> scores, ids = index.search(X[:5], n=10)   # (5, 10) each, best first

The numerical work runs in the Swift library ``libCompresSAE.so`` through its
C ABI (see ``compressae._ffi`` for the raw functions).
"""

from . import _ffi, datasets, metrics
from .errors import (
    BusyError,
    Cancelled,
    Error,
    FileError,
    FormatError,
    InvalidArgumentError,
    InvalidHandleError,
    OutOfMemoryError,
)
from .index import SparseIndex, get_num_threads, set_num_threads
from .metrics import exact_search, recall_at_n
from .model import LOSS_NAMES, REFERENCE_TRAINING, CompresSAE, SparseCodes
from .packed import PackedCodes
from . import export
from ._training_source import TrainingRows, TrainingStream

__all__ = [
    "CompresSAE",
    "SparseCodes",
    "PackedCodes",
    "SparseIndex",
    "set_num_threads",
    "get_num_threads",
    "recall_at_n",
    "exact_search",
    "metrics",
    "LOSS_NAMES",
    "REFERENCE_TRAINING",
    "TrainingRows",
    "TrainingStream",
    "Error",
    "InvalidArgumentError",
    "InvalidHandleError",
    "FileError",
    "FormatError",
    "Cancelled",
    "OutOfMemoryError",
    "BusyError",
    "library_version",
    "library_path",
    "blas_name",
    "vector_isa",
    "datasets",
    "export",
    "__version__",
]

#: Path of the loaded shared library.
library_path = str(_ffi.library_path)

#: The package's version: the library's (``CSAE_VERSION`` in the C header,
#: the one place it is written; the package metadata is built from it).
__version__: str = _ffi.csae_version().decode()


def library_version() -> str:
    """Version string of the loaded C library (``csae_version()``)."""
    return _ffi.csae_version().decode()


def blas_name() -> str:
    """The BLAS the library uses for its dense products, or ``"none"``."""
    return _ffi.csae_blas_name().decode()


def vector_isa() -> str:
    """Instruction set of the library's vector kernels: ``"avx2+fma"`` or
    ``"baseline"`` (CPUs without AVX2, or ``CSAE_DISABLE_AVX2`` set when the
    library loaded)."""
    return _ffi.csae_vector_isa().decode()
