"""Public classes: :class:`CompresSAE` and :class:`SparseCodes`.

Everything numeric happens in the C library; this module converts inputs to
float32 C-contiguous arrays (whole for ``fit``, a chunk of rows at a time for
``encode``), checks shapes for readable error messages, allocates the outputs
and maps C status codes to exceptions.
"""

from __future__ import annotations

import ctypes
import sys
import time
import warnings

import numpy as np

from . import _ffi, _training_source
from ._handle import ModelHandle, check
from ._args import INT64_MAX, _choice, _path, _size
from ._chunks import OutputRows, RowSource, check_output, empty, encode_chunk_rows, offset_rows
from ._interrupt import InterruptGuard
from .errors import Cancelled, InvalidArgumentError

__all__ = ["CompresSAE", "SparseCodes"]

#: Names of the seven losses, as the PyTorch reference reports them, in the
#: order of the fields of ``struct csae_losses``.
LOSS_NAMES = ("L2", "L2_4k", "L1", "L0", "Cosine", "Cosine_4k", "Loss")
_LOSS_FIELDS = ("l2", "l2_4k", "l1", "l0", "cosine", "cosine_4k", "loss")
_INIT_KINDS = {"tied": _ffi.CSAE_INIT_TIED, "reference": _ffi.CSAE_INIT_REFERENCE}
_LR_DECAYS = {"constant": _ffi.CSAE_LR_CONSTANT, "cosine": _ffi.CSAE_LR_COSINE, "linear": _ffi.CSAE_LR_LINEAR,
              "plateau": _ffi.CSAE_LR_PLATEAU}

_INT32_MAX = 2**31 - 1

#: The settings of ``fit``: every field of ``csae_train_params`` but the
#: struct's size and the progress callback's own two, with the C names.
TRAIN_SETTINGS = tuple(name for name, _ in _ffi.csae_train_params._fields_
                       if name not in ("struct_size", "progress", "user_data"))
#: Former ``fit`` names, still accepted with a DeprecationWarning.
_RENAMED_SETTINGS = {"lr": "learning_rate", "tol": "tolerance", "lr_decay": "learning_rate_decay",
                     "min_lr_ratio": "min_learning_rate_ratio"}


def _setting_value(name: str, raw):
    """A ``csae_train_params`` field as ``fit`` takes it (``learning_rate_decay``
    by name, ``shuffle`` as a bool)."""
    if name == "learning_rate_decay":
        return {v: k for k, v in _LR_DECAYS.items()}[raw]
    if name == "shuffle":
        return bool(raw)
    return raw


def _settings_of(params) -> dict:
    return {name: _setting_value(name, getattr(params, name)) for name in TRAIN_SETTINGS}


#: ``fit`` settings of the PyTorch reference's recipe:
#: ``model.fit(X, **REFERENCE_TRAINING)`` (with ``init="reference"`` at
#: construction, the reference's model and training, faithfully): the
#: settings where ``csae_train_reference_params()`` differs from the defaults.
REFERENCE_TRAINING = {name: value for (name, value), default
                      in zip(_settings_of(_ffi.csae_train_reference_params()).items(),
                             _settings_of(_ffi.csae_train_default_params()).values())
                      if value != default}


def _set_train_field(params, name: str, value) -> None:
    """Writes one ``fit`` setting into ``params``, checked so that ctypes does
    not wrap it; the library checks its range and reports a bad value."""
    ctype = dict(params._fields_)[name]
    if name == "learning_rate_decay":
        value = _choice(value, _LR_DECAYS, name)
    elif name == "shuffle":
        value = 1 if value else 0
    elif ctype is ctypes.c_uint64:
        value = _seed(value, name)
    elif ctype is ctypes.c_int64:
        value = _size(value, name, minimum=-INT64_MAX - 1)
    elif ctype is ctypes.c_int32:
        value = _size(value, name, minimum=-_INT32_MAX - 1, maximum=_INT32_MAX)
    elif ctype is ctypes.c_double:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        value = float(value)
    setattr(params, name, value)
_TRANSFORM_OUTPUTS = {"codes": 0, "csr": 1, "dense": 2}
#: Constructor parameters (scikit-learn's get_params/set_params).
_PARAM_NAMES = ("input_dim", "latent_dim", "k", "seed", "init", "transform_output")


def _threads(num_threads) -> int:
    """A ``num_threads`` argument: >= 1, or 0 for the default."""
    num_threads = _size(num_threads, "num_threads", minimum=0)
    if num_threads > _INT32_MAX:
        raise InvalidArgumentError(f"num_threads = {num_threads} is too large")
    return num_threads


def _encode_params(k: int, num_threads) -> "_ffi.csae_encode_params":
    """The ``csae_encode_params`` of an encode or refit at ``k``."""
    params = _ffi.csae_encode_default_params()
    params.k = k
    params.num_threads = _threads(num_threads)
    return params


def _seed(value, name: str = "seed") -> int:
    value = _size(value, name, minimum=0)
    if value >= 2**64:
        raise InvalidArgumentError(f"{name} must be < 2**64, got {value}")
    return value


def _float_matrix(X, columns: int, name: str = "X", allow_1d: bool = True) -> np.ndarray:
    """``X`` as a float32 C-contiguous [n, columns] array (copied only if needed).

    Takes what :class:`~compressae._chunks.RowSource` takes (NumPy, PyTorch
    tensors of any real dtype and device, DLPack and ``__array__`` objects).
    A 1-D input is one row when ``allow_1d``. Values (NaN, Inf, zero rows)
    are checked by the library, which reports the row number.
    """
    return RowSource(X, columns, name=name, allow_1d=allow_1d).whole()


def _weight(array, shape: tuple, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.dtype.kind not in "fiu":
        raise InvalidArgumentError(f"{name} must be a float array, got dtype {array.dtype}")
    if array.shape != shape:
        raise InvalidArgumentError(f"{name} must have shape {shape}, got {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)


class SparseCodes:
    """k-sparse codes of n rows: ``k`` latent indices and values per row.

    This is the paper's storage format (one int32 index and one float32
    value per nonzero, ``8 k`` bytes per row). Within a row, entries are
    ordered by decreasing ``|value|``.

    Parameters
    ----------
    indices : array_like of int, shape (n, k)
        Latent indices, each in ``[0, dim)``.
    values : array_like of float, shape (n, k)
        The code values (signed).
    dim : int
        The latent dimension ``h`` the indices refer to.

    Attributes
    ----------
    indices : numpy.ndarray of int32, shape (n, k)
    values : numpy.ndarray of float32, shape (n, k)
    dim : int
    """

    __slots__ = ("indices", "values", "dim")

    def __init__(self, indices, values, dim: int):
        dim = _size(dim, "dim")
        indices = np.asarray(indices)
        values = np.asarray(values)
        if indices.dtype.kind not in "iu":
            raise InvalidArgumentError(
                f"indices must be an integer array, got dtype {indices.dtype}"
            )
        if values.dtype.kind not in "fiu":
            raise InvalidArgumentError(f"values must be a float array, got dtype {values.dtype}")
        if indices.ndim != 2 or values.shape != indices.shape:
            raise InvalidArgumentError(
                "indices and values must be 2-D arrays of the same shape (n, k), "
                f"got {indices.shape} and {values.shape}"
            )
        if indices.shape[1] < 1:
            raise InvalidArgumentError("codes need k >= 1 entries per row")
        if indices.size and (indices.min() < 0 or indices.max() >= dim):
            raise InvalidArgumentError(
                f"indices must lie in [0, {dim}), found {indices.min()}..{indices.max()}"
            )
        self.indices = np.ascontiguousarray(indices, dtype=np.int32)
        self.values = np.ascontiguousarray(values, dtype=np.float32)
        self.dim = dim

    @classmethod
    def _wrap(cls, indices: np.ndarray, values: np.ndarray, dim: int) -> "SparseCodes":
        # Arrays produced by the library (or sliced from valid codes): no checks.
        codes = cls.__new__(cls)
        codes.indices, codes.values, codes.dim = indices, values, dim
        return codes

    @property
    def k(self) -> int:
        """Number of entries per row."""
        return self.indices.shape[1]

    @property
    def shape(self) -> tuple:
        """``(n, dim)``: the shape of the dense matrix these codes stand for."""
        return (self.indices.shape[0], self.dim)

    @property
    def nbytes(self) -> int:
        """Bytes held by ``indices`` and ``values`` (``8 n k``)."""
        return self.indices.nbytes + self.values.nbytes

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, rows) -> "SparseCodes":
        """Select rows: ``codes[i]`` (one row, kept 2-D), ``codes[a:b]``,
        an integer array or a boolean mask."""
        if isinstance(rows, tuple):
            raise TypeError("SparseCodes can only be indexed by rows")
        indices = self.indices[rows]
        values = self.values[rows]
        if indices.ndim == 1:  # an integer picked one row
            indices, values = indices.reshape(1, -1), values.reshape(1, -1)
        return SparseCodes._wrap(indices, values, self.dim)

    def toarray(self) -> np.ndarray:
        """The codes as a dense float32 array of shape ``(n, dim)``."""
        n = len(self)
        dense = np.zeros((n, self.dim), dtype=np.float32)
        # Scatter-add so that duplicated indices (possible in hand-made
        # codes) mean the same as in decode: their values add up.
        np.add.at(dense, (np.repeat(np.arange(n), self.k), self.indices.ravel()),
                  self.values.ravel())
        return dense

    def to_csr(self):
        """The codes as a ``scipy.sparse.csr_matrix`` of shape ``(n, dim)``.

        Column indices are sorted within each row. Needs scipy.
        """
        try:
            import scipy.sparse
        except ImportError as exc:
            raise ImportError(
                "SparseCodes.to_csr() needs scipy (pip install scipy)"
            ) from exc
        n, k = self.indices.shape
        indptr = np.arange(0, n * k + 1, k, dtype=np.int64)
        matrix = scipy.sparse.csr_matrix(
            (self.values.ravel().copy(), self.indices.ravel().copy(), indptr),
            shape=(n, self.dim),
        )
        matrix.sum_duplicates()  # also sorts the indices
        return matrix

    def pack(self, bits: int = 8, index_coding: str = "auto"):
        """The codes in the packed layout: a :class:`~compressae.PackedCodes`.

        Each row keeps its latents (bit-packed: ``index_coding``
        ``"fixed-width"``, ``ceil(log2 dim)`` bits each, ``"elias-fano"``, or
        ``"auto"`` for the smaller) and its values as signed ``bits``-bit
        levels (8 or 4) of a float32 scale, ``max |value| / (2**(bits-1) - 1)``:
        ``4 + ceil((index bits + k * bits) / 8)`` bytes per row (72 at
        ``dim`` 4096, ``k`` 32 and 8 bits; 56 at 4 bits). For a reconstructed
        index, refit first (``encode(refit=True)``) and pack the refitted codes.
        """
        from .packed import pack
        return pack(self, bits, index_coding)

    def to_nonnegative(self) -> "SparseCodes":
        """The sign split: non-negative codes over ``2 * dim`` latents.

        A value ``v < 0`` of latent ``i`` moves to latent ``dim + i`` as
        ``-v``; rows keep ``k`` entries and their L2 norm. For engines that
        refuse negative weights (Milvus, Elasticsearch, OpenSearch); see
        :mod:`compressae.export` (``split_query`` gives the exact query).
        """
        from .export import sign_split
        return sign_split(self)

    def to_torch(self, layout: str = "coo"):
        """The codes as a torch sparse tensor (``layout`` ``"coo"`` or
        ``"csr"``) of shape ``(n, dim)``. Needs PyTorch."""
        from .export import to_torch
        return to_torch(self, layout)

    def __repr__(self) -> str:
        return f"SparseCodes(n={len(self)}, k={self.k}, dim={self.dim})"


class _StderrProgress:
    """Fallback progress display on stderr when tqdm is not installed.

    On a terminal one line is rewritten in place; otherwise (logs, CI) whole
    lines are written, fewer of them, so the log stays readable.
    """

    def __init__(self, desc: str = "compressae", unit: str = "step"):
        self._desc, self._unit = desc, unit
        self._last = None
        try:
            self._tty = sys.stderr.isatty()
        except (AttributeError, ValueError):
            self._tty = False
        self._interval = 0.2 if self._tty else 2.0

    def __call__(self, step: int, total: int, loss: float | None = None) -> None:
        now = time.monotonic()
        if step == total or self._last is None or now - self._last >= self._interval:
            self._last = now
            text = f"{self._desc}: {self._unit} {step}/{total}"
            if loss is not None:
                text += f"  loss {loss:.5f}"
            sys.stderr.write("\r" + text if self._tty else text + "\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._last is not None and self._tty:
            sys.stderr.write("\n")
            sys.stderr.flush()


class _TqdmProgress:
    def __init__(self, tqdm, desc: str = "compressae", unit: str = "step"):
        self._tqdm = tqdm
        self._desc, self._unit = desc, unit
        self._bar = None

    def __call__(self, step: int, total: int, loss: float | None = None) -> None:
        if self._bar is None:
            self._bar = self._tqdm(total=total, desc=self._desc, unit=self._unit)
        self._bar.update(step - self._bar.n)
        if loss is not None:
            self._bar.set_postfix(loss=f"{loss:.5f}", refresh=False)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _default_progress(desc: str = "compressae", unit: str = "step"):
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _StderrProgress(desc, unit)
    return _TqdmProgress(tqdm, desc, unit)


class _RowProgress:
    """``progress`` of the chunked calls: ``True`` (a bar in rows), ``None``
    / ``False`` (nothing) or a callable ``progress(done, total)`` that may
    return ``False`` to stop (then :class:`Cancelled` is raised)."""

    def __init__(self, progress, desc: str):
        self._closer = None
        if progress is None or progress is False:
            self._report = None
        elif progress is True:
            self._report = _default_progress(desc, "row")
            self._closer = self._report.close
        elif callable(progress):
            self._report = progress
        else:
            raise TypeError("progress must be None, True, False or a callable")

    def __call__(self, done: int, total: int) -> None:
        if self._report is not None and self._report(done, total) is False:
            raise Cancelled(f"stopped by the progress callback after {done} of {total} rows")

    def close(self) -> None:
        if self._closer is not None:
            self._closer()


class _ProgressBridge:
    """Turns a Python progress callable into a C ``csae_progress_fn``.

    Exceptions must not unwind through the Swift frames that call the
    callback (that is undefined behaviour), so the trampoline catches
    everything, asks the library to cancel, and ``fit`` re-raises the
    exception once the C call has returned.

    The callback is installed even without a progress callable: it is
    where training stops on Ctrl-C (``guard`` records the signal, the
    trampoline asks the library to stop after the current step). It costs
    one Python call per optimiser step.
    """

    def __init__(self, progress, guard: InterruptGuard | None = None):
        self.error = None
        self.cancelled = False
        self.interrupted = False
        self.steps = 0
        self._guard = guard
        self._closer = None
        if progress is None or progress is False:
            self.report = None
        elif progress is True:
            self.report = _default_progress()
            self._closer = self.report.close
        elif callable(progress):
            self.report = progress
        else:
            raise TypeError("progress must be None, True, False or a callable")
        # The CFUNCTYPE object must outlive the C call: keep it on self.
        self.c_callback = _ffi.csae_progress_fn(self._trampoline)

    def _trampoline(self, user_data, step, total, loss) -> int:
        # The library calls again with the last step's values between the
        # batches of a validation pass (so that it can be stopped): no new report.
        repeated = step == self.steps
        self.steps = step
        guard = self._guard
        if guard is not None and guard.pending:
            self.interrupted = True
            return 1
        if self.report is None or repeated:
            return 0
        try:
            result = self.report(int(step), int(total), float(loss))
        except BaseException as exc:  # including KeyboardInterrupt
            self.error = exc
            return 1
        if guard is not None and guard.pending:  # Ctrl-C while the callable ran
            self.interrupted = True
            return 1
        if result is False:
            self.cancelled = True
            return 1
        return 0

    def close(self) -> None:
        if self._closer is not None:
            self._closer()


class CompresSAE:
    """CompresSAE: a top-k sparse autoencoder for embedding compression.

    Encodes dense vectors of ``input_dim`` floats into ``k``-sparse codes over
    ``latent_dim`` latents (``xn = x / ||x||``, ``p = xn @ encoder_w +
    encoder_b``, keep the ``k`` entries of largest ``|p|``) and decodes them
    linearly (``codes @ decoder_w``).

    Parameters
    ----------
    input_dim : int
        Dimension ``d`` of the dense embeddings.
    latent_dim : int, default 4096
        Sparse dimension ``h``. Training needs ``4 * k <= latent_dim``.
    k : int, default 32
        Nonzeros per code.
    seed : int, default 0
        Seed of the Kaiming-uniform initialisation (and of the training
        shuffle when ``fit`` is called with ``seed=None``).
    init : {"tied", "reference"}, default "tied"
        ``"reference"`` draws the encoder like the PyTorch reference;
        ``"tied"`` starts it as the decoder's transpose, so that every latent
        starts alive (see the README's quality section for the measurement).
    transform_output : {"codes", "csr", "dense"}, default "codes"
        What :meth:`transform` and :meth:`fit_transform` return:
        :class:`SparseCodes`, a ``scipy.sparse.csr_matrix`` (what
        scikit-learn estimators take) or a dense float32 array, all of shape
        ``(n, latent_dim)``. :meth:`encode` always returns codes.

    Notes
    -----
    The model owns memory in the C library: release it early with
    :meth:`close` or a ``with`` block (it is otherwise freed by the garbage
    collector). A model can be used from several threads at once: calls
    release the GIL and run concurrently. While ``fit`` runs, other calls
    on the model wait for the current optimiser step and see the weights
    between steps; a second concurrent ``fit`` raises :class:`BusyError`.
    """

    def __init__(self, input_dim: int, latent_dim: int = 4096, k: int = 32, seed: int = 0,
                 init: str = "tied", transform_output: str = "codes"):
        input_dim = _size(input_dim, "input_dim")
        latent_dim = _size(latent_dim, "latent_dim")
        k = _size(k, "k")
        seed = _seed(seed)
        init_kind = _choice(init, _INIT_KINDS, "init")
        _choice(transform_output, _TRANSFORM_OUTPUTS, "transform_output")
        out = _ffi.csae_model_p()
        check(_ffi.csae_model_create(input_dim, latent_dim, k, seed, init_kind, ctypes.byref(out)))
        self._init(out.value, seed)
        # The objects given (equal to the library's values): scikit-learn's
        # clone checks that get_params returns them as passed.
        self._d, self._h, self._k = input_dim, latent_dim, k
        self._init_name = init
        self.transform_output = transform_output

    def _init(self, pointer: int, seed: int) -> None:
        self._handle = ModelHandle(pointer)
        self._seed_value = seed
        self._init_name = "tied"
        self.transform_output = "codes"
        self._fit_calls = 0
        #: Per-step training losses of the last ``fit`` call (float32).
        self.history_ = np.zeros(0, dtype=np.float32)
        self.dead_latents_ = np.zeros(0, dtype=np.float32)
        #: Validation loss at every validation (``validation_steps``) of the last ``fit`` (with ``validation_fraction``).
        self.validation_loss_ = np.zeros(0, dtype=np.float32)
        d, h, k = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        self._handle.call(_ffi.csae_model_get_shape, ctypes.byref(d), ctypes.byref(h),
                          ctypes.byref(k))
        self._d, self._h, self._k = d.value, h.value, k.value

    @classmethod
    def _from_pointer(cls, pointer: int, seed: int = 0) -> "CompresSAE":
        model = cls.__new__(cls)
        model._init(pointer, seed)
        return model

    # ------------------------------------------------------------ creation

    @classmethod
    def from_weights(cls, encoder_w, encoder_b, decoder_w, k: int) -> "CompresSAE":
        """A model with the given weights (copied as given, not renormalised).

        Parameters
        ----------
        encoder_w : array_like, shape (d, h)
        encoder_b : array_like, shape (h,)
        decoder_w : array_like, shape (h, d)
            Rows should have unit L2 norm, as training keeps them.
        k : int
            Nonzeros per code.

        Returns
        -------
        CompresSAE
        """
        encoder_w = np.asarray(encoder_w)
        if encoder_w.ndim != 2:
            raise InvalidArgumentError(
                f"encoder_w must be a 2-D array [d, h], got shape {encoder_w.shape}"
            )
        d, h = encoder_w.shape
        encoder_w = _weight(encoder_w, (d, h), "encoder_w")
        encoder_b = _weight(encoder_b, (h,), "encoder_b")
        decoder_w = _weight(decoder_w, (h, d), "decoder_w")
        k = _size(k, "k")
        out = _ffi.csae_model_p()
        check(_ffi.csae_model_create_from_weights(
            d, h, k, _ffi.f32_ptr(encoder_w), _ffi.f32_ptr(encoder_b),
            _ffi.f32_ptr(decoder_w), ctypes.byref(out)))
        return cls._from_pointer(out.value)

    @classmethod
    def load(cls, path, k: int | None = None) -> "CompresSAE":
        """Load a model from a safetensors file.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by :meth:`save`, or a PyTorch reference
            ``state_dict`` saved as safetensors (tensors ``encoder_w``,
            ``encoder_b``, ``decoder_w``, float32).
        k : int, optional
            Nonzeros per code. Required when the file has no compressae
            metadata (e.g. a reference state dict); overrides the file's k
            otherwise.

        Returns
        -------
        CompresSAE

        Raises
        ------
        FileError
            The file cannot be read.
        FormatError
            The file is not a valid model file (the message says why).
        """
        path = _path(path)
        k = 0 if k is None else _size(k, "k")
        out = _ffi.csae_model_p()
        check(_ffi.csae_model_load(path, k, ctypes.byref(out)))
        return cls._from_pointer(out.value)

    def save(self, path) -> None:
        """Save the weights and k to a safetensors file.

        The file is written next to its destination under a temporary name
        and renamed into place, so readers never see a partial file.

        Parameters
        ----------
        path : str or os.PathLike
        """
        self._handle.call(_ffi.csae_model_save, _path(path))

    # ---------------------------------------------------------- attributes

    @property
    def input_dim(self) -> int:
        """Dimension ``d`` of the dense inputs."""
        return self._d

    @property
    def latent_dim(self) -> int:
        """Dimension ``h`` of the sparse codes."""
        return self._h

    @property
    def k(self) -> int:
        """Nonzeros per code used by :meth:`encode` and by training.

        Assignable: ``model.k = 16`` changes it (``1 <= k <= latent_dim``).
        """
        return self._k

    @k.setter
    def k(self, value: int) -> None:
        value = _size(value, "k")
        self._handle.call(_ffi.csae_model_set_k, value)
        self._k = value

    def _copy_weights(self, which: str) -> np.ndarray:
        d, h = self._d, self._h
        shapes = {"encoder_w": (d, h), "encoder_b": (h,), "decoder_w": (h, d)}
        out = np.empty(shapes[which], dtype=np.float32)
        args = []
        for name in ("encoder_w", "encoder_b", "decoder_w"):
            if name == which:
                args += [_ffi.f32_ptr(out), out.size]
            else:
                args += [None, 0]
        self._handle.call(_ffi.csae_model_copy_weights, *args)
        return out

    @property
    def encoder_w(self) -> np.ndarray:
        """Encoder weights, a fresh float32 copy of shape ``(d, h)``."""
        return self._copy_weights("encoder_w")

    @property
    def encoder_b(self) -> np.ndarray:
        """Encoder bias, a fresh float32 copy of shape ``(h,)``."""
        return self._copy_weights("encoder_b")

    @property
    def decoder_w(self) -> np.ndarray:
        """Decoder weights, a fresh float32 copy of shape ``(h, d)`` (unit rows)."""
        return self._copy_weights("decoder_w")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._handle.closed

    # ------------------------------------------------------------ training

    def fit(self, X, y=None, *, batch_size: int | None = None, epochs: int | None = None,
            learning_rate: float | None = None, seed: int | None = None, progress=None,
            shuffle: bool | None = None, num_threads: int | None = None, beta1: float | None = None,
            beta2: float | None = None, eps: float | None = None, dead_latent_window: int | None = None,
            warmup_steps: int | None = None, learning_rate_decay: str | None = None,
            min_learning_rate_ratio: float | None = None, validation_fraction: float | None = None,
            patience: int | None = None, tolerance: float | None = None,
            plateau_factor: float | None = None, plateau_reductions: int | None = None,
            sparse_similarity_weight: float | None = None, similarity_temperature: float | None = None,
            similarity_rows: int | None = None, validation_steps: int | None = None,
            dead_latent_aux_weight: float | None = None, dead_latent_aux_k: int | None = None,
            **settings) -> "CompresSAE":
        """Train on ``X`` with Adam, updating the model in place.

        The defaults are the recipe chosen by measurement on real data (see
        the README's quality section): a learning rate of 1e-2 after a
        50-step warm-up, held constant until the loss on a 5% validation
        split stops improving, then cut by 5x twice, stopping at the third
        plateau (or after 400 epochs); the objective adds a small similarity
        term that makes sparse-code cosines rank like the input cosines.
        ``fit(X, **compressae.REFERENCE_TRAINING)`` runs the PyTorch
        reference's recipe instead (one epoch at a constant 1e-3, the
        reconstruction objective alone, every row trained on).

        Every setting defaults to ``None``: the library's default
        (``csae_train_default_params()``; ``fit`` does not restate them), shown
        below. The names are those of the C struct ``csae_train_params``;
        the former ``lr``, ``tol``, ``lr_decay`` and ``min_lr_ratio`` still
        work, with a ``DeprecationWarning``.

        Each call starts a new Adam optimiser from the current weights and
        runs at most ``epochs * ceil(n_train / batch_size)`` steps; the loss
        of every step is stored in ``history_``, the validation loss of every
        epoch in ``validation_loss_``, and in ``dead_latents_`` the fraction
        of latents that were in no row's k-code during the last
        ``dead_latent_window`` training rows (0 until that many were seen).

        Parameters
        ----------
        X : array_like, shape (n, input_dim), or a stream of batches
            Training embeddings; rows must be finite and nonzero. A float32
            NumPy array in memory is used as it is; a memory map, an array of
            another dtype, a PyTorch tensor or a DLPack object is read a
            batch at a time (the rows of each batch converted to float32,
            never the whole input; memory-map pages are released after each
            block) with the same shuffle and results as float32 in memory,
            except that a memory map is shuffled in blocks of 256 rows (see
            :class:`compressae.TrainingRows`). A callable returning an
            iterator of batches, or another iterable (not a list), is a
            stream read once per epoch in its order, with a bounded held-out
            sample (see :class:`compressae.TrainingStream`). See
            docs/large-data.md.
        y : None
            Ignored (scikit-learn's convention). The other settings are
            keyword-only.
        batch_size : int, default 4096
            Rows per optimiser step (the last batch of an epoch may be
            smaller).
        epochs : int, default 400
            Passes over the training rows; with early stopping, a maximum.
        learning_rate : float, default 1e-2
            Adam learning rate (after the warm-up, before any cut or decay).
        seed : int, optional
            Seed of the validation split and of the per-epoch shuffle.
            ``None`` derives it from the model's seed and the number of
            earlier ``fit`` calls on this object, so repeated calls see
            different orders while a script stays reproducible. Models made
            by ``load``/``from_weights`` count from seed 0.
        progress : None, bool or callable, optional
            ``True`` shows a progress bar (tqdm when installed, else a line
            on stderr). A callable is called after every step as
            ``progress(step, total, loss)`` (``step`` from 1 to ``total``,
            ``total`` the most steps the call may run); returning ``False``
            (exactly) stops training and raises :class:`Cancelled`. An
            exception raised by the callable stops training and is re-raised
            by ``fit``. Ctrl-C (SIGINT, ``fit`` on the main thread) stops
            training after the current step and raises ``KeyboardInterrupt``;
            the model keeps the steps done, ``history_`` their losses (the
            validation pass at the end of an epoch is not interrupted).
        shuffle : bool, default True
            Shuffle the rows every epoch; ``False`` uses them in order.
        num_threads : int, default 0
            Worker threads, 0 for the default (:func:`compressae.get_num_threads`).
        beta1, beta2, eps : float
            Adam's parameters (PyTorch's defaults).
        dead_latent_window : int, default 0
            Rows after which a latent that fired in no k-code counts as dead
            in ``dead_latents_``; 0 means one epoch (the training rows).
        warmup_steps : int, default 50
            Steps over which the learning rate rises linearly to ``learning_rate``.
        learning_rate_decay : {"plateau", "constant", "cosine", "linear"}, default "plateau"
            After the warm-up: ``"plateau"`` keeps ``learning_rate`` until the
            validation loss has not improved by a relative ``tolerance`` for
            ``patience`` epochs, then multiplies it by ``plateau_factor``, at
            most ``plateau_reductions`` times; the next plateau ends training.
            ``"constant"`` keeps ``learning_rate``; ``"cosine"`` and
            ``"linear"`` decay it to ``learning_rate * min_learning_rate_ratio``
            at the last planned step.
        min_learning_rate_ratio : float, default 0.0
            Final learning rate of a cosine or linear decay, as a fraction of
            ``learning_rate``.
        validation_fraction : float, default 0.05
            Fraction of the rows (a seeded random choice) held out of
            training to measure the validation loss (the reconstruction
            objective) after epochs at least ``validation_steps`` steps apart. Inputs of fewer than 20 rows are
            not split.
        patience : int, default 2
            Validations (see ``validation_steps``) without a relative improvement of ``tolerance`` that make a
            plateau. With ``learning_rate_decay`` other than ``"plateau"``, the first
            plateau stops training; 0 never stops early. Needs
            ``validation_fraction > 0``.
        tolerance : float, default 5e-3
            Relative improvement of the validation loss that counts.
        plateau_factor : float, default 0.2
            Factor of each learning-rate cut of ``"plateau"``.
        plateau_reductions : int, default 2
            Cuts of ``"plateau"`` before a plateau ends training.
        sparse_similarity_weight : float, default 0.03
            Weight of the sparse similarity term added to the objective: over
            ``similarity_rows`` rows of each batch, the softmax of code
            cosines is trained towards the softmax of input cosines
            (cross-entropy, temperature ``similarity_temperature``), so that
            sparse-mode search ranks like dense search. 0 turns it off.
        similarity_temperature : float, default 0.05
        similarity_rows : int, default 1024
        validation_steps : int, default 25
            Fewest steps between two validations: the loss is measured after
            the first epoch that ends at least this many steps after the last
            measurement (every epoch when epochs are longer), so that
            ``patience`` counts work, not
            passes over a small set (a set of 1,700 rows is one step per
            epoch); 0 measures it after every epoch.
        dead_latent_aux_weight : float, default 0.125
            Weight of the auxiliary dead-latent term: each row's top
            ``dead_latent_aux_k`` dead latents (in no k-code during the last
            ``dead_latent_window`` training rows) are trained to reconstruct
            what its k-code misses, so that they come back into use
            (``docs/maths.md``, "The dead-latent term"). 0 turns it off.
        dead_latent_aux_k : int, default 0
            Dead latents per row in that term; 0 = ``max(4, k // 4)``.
        **settings
            The former names above, and any field of ``csae_train_params``
            this signature does not list yet.

        Returns
        -------
        CompresSAE
            ``self``.

        Raises
        ------
        Cancelled
            The progress callable returned ``False``. The model keeps the
            steps done, ``history_`` their losses.
        KeyboardInterrupt
            Ctrl-C; the model keeps the steps done, as for ``Cancelled``.
        InvalidArgumentError
            Bad sizes or settings, ``4 * k > latent_dim``, NaN/Inf or
            all-zero rows.
        """
        given = {name: value for name, value in locals().items()
                 if name in TRAIN_SETTINGS and value is not None}
        for name, value in settings.items():
            new = _RENAMED_SETTINGS.get(name)
            if new is not None:
                warnings.warn(f"fit({name}=...) is deprecated: use {new}=", DeprecationWarning, stacklevel=2)
            elif name in TRAIN_SETTINGS:
                new = name
            else:
                raise TypeError(f"fit() got an unexpected keyword argument {name!r}")
            if new in given:
                raise TypeError(f"fit() got {new!r} twice (as {name!r} and {new!r})")
            given[new] = value
        # Memory maps, other dtypes, tensors and streams are read a batch at a time.
        source = _training_source.source_for(X, self._d) if _training_source.wants_source(X) else None
        if source is None:
            X = _float_matrix(X, self._d, allow_1d=False)
            if X.shape[0] == 0:
                raise InvalidArgumentError("fit needs at least one row")
        # Every setting not given keeps the library's default.
        params = _ffi.csae_train_default_params()
        if "seed" not in given:
            given["seed"] = (self._seed_value + self._fit_calls) % 2**64
        for name, value in given.items():
            _set_train_field(params, name, value)
        self.history_ = np.zeros(0, dtype=np.float32)
        self.dead_latents_ = np.zeros(0, dtype=np.float32)
        self.validation_loss_ = np.zeros(0, dtype=np.float32)
        if source is not None:
            source.check_epochs(params.epochs)
        with InterruptGuard() as guard:
            bridge = _ProgressBridge(progress, guard)
            params.progress = bridge.c_callback
            try:
                if source is None:
                    status, message = self._handle.call(
                        _ffi.csae_model_train, _ffi.f32_ptr(X), X.shape[0], X.shape[1],
                        ctypes.byref(params), raise_on_error=False)
                else:
                    source.guard = guard
                    status, message = self._handle.call(
                        _ffi.csae_model_train_source, ctypes.byref(source.c_source),
                        ctypes.byref(params), raise_on_error=False)
            finally:
                bridge.close()
            self._fit_calls += 1
            if status in (_ffi.CSAE_OK, _ffi.CSAE_ERR_CANCELLED):
                self.history_ = self._history(_ffi.CSAE_HISTORY_TRAINING_LOSS)
                self.dead_latents_ = self._history(_ffi.CSAE_HISTORY_DEAD_LATENTS)
                self.validation_loss_ = self._history(_ffi.CSAE_HISTORY_VALIDATION_LOSS)
            # Ctrl-C: KeyboardInterrupt (not Cancelled), the weights of the last full step kept.
            guard.check()
        if bridge.error is not None:
            raise bridge.error
        if source is not None and source.error is not None:
            raise source.error
        if status == _ffi.CSAE_ERR_CANCELLED and bridge.cancelled:
            raise Cancelled(
                f"training cancelled by the progress callback after step {bridge.steps}",
                status)
        check(status, message)
        return self

    def _history(self, which: int) -> np.ndarray:
        """One series of the last training call (a ``csae_history`` value)."""
        length = ctypes.c_int64()
        self._handle.call(_ffi.csae_model_copy_history, which, None, 0, ctypes.byref(length))
        out = np.empty(length.value, dtype=np.float32)
        if out.size:
            self._handle.call(_ffi.csae_model_copy_history, which, _ffi.f32_ptr(out), out.size,
                              ctypes.byref(length))
        return out

    def fit_transform(self, X, y=None, **fit_params):
        """``fit(X, **fit_params)`` then ``transform(X)``."""
        return self.fit(X, **fit_params).transform(X)

    # ------------------------------------------------- scikit-learn protocol

    def get_params(self, deep: bool = True) -> dict:
        """Constructor parameters (scikit-learn's estimator protocol).

        ``sklearn.base.clone`` builds a new, untrained model from them.
        """
        return {"input_dim": self._d, "latent_dim": self._h, "k": self._k,
                "seed": self._seed_value, "init": self._init_name,
                "transform_output": self.transform_output}

    def set_params(self, **params) -> "CompresSAE":
        """Set constructor parameters; returns ``self``.

        ``k`` and ``transform_output`` keep the weights. ``input_dim``,
        ``latent_dim``, ``seed`` or ``init`` (when changed) start a new,
        untrained model in place, as constructing one would.
        """
        unknown = sorted(set(params) - set(_PARAM_NAMES))
        if unknown:
            raise InvalidArgumentError(
                f"invalid parameter(s) {unknown} for CompresSAE; valid: {list(_PARAM_NAMES)}")
        current = self.get_params()
        merged = {**current, **params}
        rebuild = any(merged[name] != current[name]
                      for name in ("input_dim", "latent_dim", "seed", "init"))
        if rebuild:
            self.__init__(**merged)
            return self
        if "transform_output" in params:
            _choice(params["transform_output"], _TRANSFORM_OUTPUTS, "transform_output")
            self.transform_output = params["transform_output"]
        if "k" in params:
            self.k = params["k"]
        return self

    @property
    def n_features_in_(self) -> int:
        """Number of input features, ``input_dim`` (scikit-learn's attribute)."""
        return self._d

    def transform(self, X):
        """``encode(X)`` in the form chosen by ``transform_output``:
        :class:`SparseCodes` (default), a scipy CSR matrix or a dense array."""
        codes = self.encode(X)
        _choice(self.transform_output, _TRANSFORM_OUTPUTS, "transform_output")
        if self.transform_output == "csr":
            return codes.to_csr()
        if self.transform_output == "dense":
            return codes.toarray()
        return codes

    def loss_and_gradients(self, X) -> tuple[dict, dict]:
        """Losses and gradients of one batch at the current weights (no update).

        Parameters
        ----------
        X : array_like, shape (n, input_dim)

        Returns
        -------
        losses : dict of str to float
            ``L2``, ``L2_4k``, ``L1``, ``L0``, ``Cosine``, ``Cosine_4k`` and
            ``Loss`` (= ``Cosine + Cosine_4k / 8``, the training objective),
            named as in the PyTorch reference.
        gradients : dict of str to numpy.ndarray
            d Loss / d parameter for ``encoder_w`` (d, h), ``encoder_b`` (h,)
            and ``decoder_w`` (h, d), float32.
        """
        X = _float_matrix(X, self._d, allow_1d=False)
        if X.shape[0] == 0:
            raise InvalidArgumentError("the loss needs at least one row")
        d, h = self._d, self._h
        losses = _ffi.csae_losses()
        grads = {
            "encoder_w": np.empty((d, h), dtype=np.float32),
            "encoder_b": np.empty(h, dtype=np.float32),
            "decoder_w": np.empty((h, d), dtype=np.float32),
        }
        self._handle.call(
            _ffi.csae_model_loss_and_gradients, _ffi.f32_ptr(X), X.shape[0], d, 0,
            ctypes.byref(losses), _ffi.f32_ptr(grads["encoder_w"]),
            _ffi.f32_ptr(grads["encoder_b"]), _ffi.f32_ptr(grads["decoder_w"]))
        values = {name: float(getattr(losses, field))
                  for name, field in zip(LOSS_NAMES, _LOSS_FIELDS)}
        return values, grads

    # ----------------------------------------------------- encode / decode

    def preactivations(self, X) -> np.ndarray:
        """Dense pre-activations ``normalize(X) @ encoder_w + encoder_b``.

        Parameters
        ----------
        X : array_like, shape (n, input_dim) or (input_dim,)

        Returns
        -------
        numpy.ndarray of float32, shape (n, latent_dim)
        """
        X = _float_matrix(X, self._d)
        out = np.empty((X.shape[0], self._h), dtype=np.float32)
        if X.shape[0]:
            self._handle.call(_ffi.csae_model_preactivations, _ffi.f32_ptr(X),
                              X.shape[0], X.shape[1], 0, _ffi.f32_ptr(out))
        return out

    def encode(self, X, k: int | None = None, refit: bool = False, *, out=None,
               progress=None, batch_size: int | None = None, num_threads: int = 0) -> SparseCodes:
        """Compress dense vectors to k-sparse codes.

        The rows are encoded a chunk at a time: each chunk is converted to
        float32 on its own (a float16 memmap or a bfloat16 tensor is never
        copied whole), Ctrl-C stops the call between chunks (raising
        ``KeyboardInterrupt``), and ``out`` can receive codes too large for
        memory. The latents do not depend on the chunking; with an optimised
        BLAS the values may differ in the last bit between chunkings (its
        sums are blocked by the number of rows in a call).

        Parameters
        ----------
        X : array_like, shape (n, input_dim) or (input_dim,)
            Any real array: NumPy arrays and memmaps of any dtype and layout,
            PyTorch tensors (bfloat16, requiring grad, on a GPU), objects
            implementing DLPack or ``__array__`` (CuPy, JAX, h5py, ...: sliced
            and converted one chunk at a time). A 1-D array is one row. An
            empty array (n = 0) gives empty codes. Rows must be finite and
            nonzero (the error names the first bad row).
        k : int, optional
            Nonzeros per row, ``1 <= k <= latent_dim``; defaults to
            ``self.k``.
        refit : bool, default False
            Replace the encoder's values by the least-squares values on the
            same latents (see :meth:`refit`): ``decode`` then reproduces
            ``X`` more closely and reconstructed-mode search ranks better,
            while sparse-mode cosines rank better with the encoder's values.
            ``False`` gives the reference model's codes.
        out : SparseCodes or (indices, values) pair of arrays, optional
            Where to write the codes: ``indices`` int32 and ``values`` float32
            arrays of shape ``(n, k)``, writable, any layout (e.g. two
            ``np.memmap`` opened with ``mode="w+"``), or a :class:`SparseCodes`
            of this model holding them. Returned (as :class:`SparseCodes`)
            instead of new arrays. If the call stops early (an error, Ctrl-C,
            ``Cancelled``), the rows before the failing chunk are written.
        progress : None, bool or callable, optional
            ``True`` shows a progress bar in rows (tqdm when installed, else
            stderr). A callable is called after every chunk as
            ``progress(rows_done, n)``; returning ``False`` stops and raises
            :class:`Cancelled`.
        batch_size : int, optional
            Rows per chunk. Default: about 2**30 multiply-adds per worker
            thread (a few tenths of a second), a multiple of the library's
            512-row encoder blocks.
        num_threads : int, default 0
            Worker threads, 0 for the default (:func:`compressae.get_num_threads`).

        Returns
        -------
        SparseCodes
            ``n`` rows of ``k`` (index, value) pairs, by decreasing
            ``|value|`` (ties: lower index first).

        Raises
        ------
        KeyboardInterrupt
            Ctrl-C (on the main thread), between two chunks.
        """
        source = RowSource(X, self._d)
        k = self._k if k is None else _size(k, "k")
        if k > self._h:
            raise InvalidArgumentError(f"k = {k} exceeds latent_dim = {self._h}")
        n = source.rows
        params = _encode_params(k, num_threads)
        if batch_size is None:
            batch_size = encode_chunk_rows(self._d, self._h, k, refit,
                                           num_threads or _ffi.csae_get_num_threads())
        else:
            batch_size = _size(batch_size, "batch_size")
        indices, values = self._code_outputs(out, n, k)
        report = _RowProgress(progress, "compressae encode")
        writer = OutputRows([indices, values])
        try:
            with InterruptGuard() as guard:
                for start in range(0, n, batch_size):
                    stop = min(n, start + batch_size)
                    chunk = source.chunk(start, stop)
                    idx, val = writer.views(start, stop)
                    try:
                        self._encode_chunk(chunk, params, refit, idx, val)
                    except InvalidArgumentError as exc:
                        raise offset_rows(exc, start) from None
                    writer.commit(start, stop, (idx, val))
                    source.done(stop)
                    del chunk
                    report(stop, n)
                    guard.check()
        finally:
            report.close()
        if isinstance(out, SparseCodes):
            return out
        return SparseCodes._wrap(indices, values, self._h)

    def _encode_chunk(self, X: np.ndarray, params, refit: bool, indices: np.ndarray,
                      values: np.ndarray) -> None:
        n = X.shape[0]
        if not n:
            return
        self._handle.call(_ffi.csae_model_encode, _ffi.f32_ptr(X), n, X.shape[1], ctypes.byref(params),
                          _ffi.i32_ptr(indices), _ffi.f32_ptr(values), indices.size, None)
        if refit:
            self._handle.call(_ffi.csae_model_refit, _ffi.f32_ptr(X), n, X.shape[1], ctypes.byref(params),
                              _ffi.i32_ptr(indices), _ffi.f32_ptr(values), indices.size, None)

    def _code_outputs(self, out, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The (indices, values) arrays ``encode`` writes into: new ones, or
        the caller's ``out`` after checking them."""
        if out is None:
            return (empty((n, k), np.int32, "the code indices"),
                    empty((n, k), np.float32, "the code values"))
        if isinstance(out, SparseCodes):
            if out.dim != self._h:
                raise InvalidArgumentError(
                    f"out has dim {out.dim} but the model's latent_dim is {self._h}")
            pair = (out.indices, out.values)
        elif isinstance(out, (tuple, list)) and len(out) == 2:
            pair = tuple(out)
        else:
            raise TypeError("out must be a SparseCodes or an (indices, values) pair of arrays, "
                            f"got {type(out).__name__}")
        indices = check_output(pair[0], (n, k), np.int32, "out indices")
        values = check_output(pair[1], (n, k), np.float32, "out values")
        if np.may_share_memory(indices, values):
            raise InvalidArgumentError("out indices and values overlap in memory")
        return indices, values

    def refit(self, X, codes, *, num_threads: int = 0) -> SparseCodes:
        """Least-squares values for given codes of ``X``.

        For each row ``x`` and its code's latents ``S``, the new values are
        ``argmin_z |x - z @ decoder_w[S]|^2`` (with a ridge of 1e-3 times the
        mean squared norm of those decoder rows), solved by Cholesky. The
        encoder chooses the latents well but estimates their values in one
        pass; refitting lowers the reconstruction error on the same
        ``k`` latents (on the shared MiniLM data at k = 32, Recall@100 of
        reconstructed search rises by about 0.09; see the README).

        Parameters
        ----------
        X : array_like, shape (n, input_dim)
            The rows the codes were made from; finite, nonzero rows.
        codes : SparseCodes, (indices, values) tuple, or scipy sparse matrix
            ``n`` codes of the model. Only the latents are used, except for a
            row whose solve fails (products that overflow float32), which
            keeps its values.
        num_threads : int, default 0
            Worker threads, 0 for the default (:func:`compressae.get_num_threads`).

        Returns
        -------
        SparseCodes
            New codes on the same latents, by decreasing ``|value|``.
        """
        X = _float_matrix(X, self._d)
        indices, values = self._code_arrays(codes)
        # A row whose solve fails keeps the values it came with.
        indices, values = indices.copy(), values.copy()
        n, k = indices.shape
        if n != X.shape[0]:
            raise InvalidArgumentError(f"X has {X.shape[0]} rows but codes has {n}")
        if n:
            self._handle.call(_ffi.csae_model_refit, _ffi.f32_ptr(X), n, X.shape[1],
                              ctypes.byref(_encode_params(k, num_threads)),
                              _ffi.i32_ptr(indices), _ffi.f32_ptr(values), indices.size, None)
        return SparseCodes._wrap(indices, values, self._h)

    def decode(self, codes, *, num_threads: int = 0) -> np.ndarray:
        """Reconstruct dense vectors from sparse codes (``codes @ decoder_w``).

        Parameters
        ----------
        codes : SparseCodes, (indices, values) pair, or scipy sparse matrix
            A pair holds two arrays of shape (n, k) (or (k,) for one row); a
            scipy matrix has shape (n, latent_dim) and any number of
            nonzeros per row.
        num_threads : int, default 0
            Worker threads, 0 for the default (:func:`compressae.get_num_threads`).

        Returns
        -------
        numpy.ndarray of float32, shape (n, input_dim)
        """
        indices, values = self._code_arrays(codes)
        n, k = indices.shape
        out = np.empty((n, self._d), dtype=np.float32)
        if n:
            self._handle.call(_ffi.csae_model_decode, _ffi.i32_ptr(indices),
                              _ffi.f32_ptr(values), n, k, _threads(num_threads), _ffi.f32_ptr(out))
        return out

    def _code_arrays(self, codes) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(codes, SparseCodes):
            if codes.dim != self._h:
                raise InvalidArgumentError(
                    f"the codes have dim {codes.dim} but the model's latent_dim is {self._h}")
            # Rows selected with a step (codes[::2]) are views with gaps.
            return (np.ascontiguousarray(codes.indices, dtype=np.int32),
                    np.ascontiguousarray(codes.values, dtype=np.float32))
        sparse = sys.modules.get("scipy.sparse")
        if sparse is not None and sparse.issparse(codes):
            return self._csr_arrays(codes)
        if isinstance(codes, (tuple, list)) and len(codes) == 2:
            indices, values = np.asarray(codes[0]), np.asarray(codes[1])
            if indices.dtype.kind not in "iu":
                raise InvalidArgumentError(
                    f"indices must be an integer array, got dtype {indices.dtype}")
            if values.dtype.kind not in "fiu":
                raise InvalidArgumentError(
                    f"values must be a float array, got dtype {values.dtype}")
            if indices.ndim == 1:
                indices, values = indices.reshape(1, -1), values.reshape(1, -1)
            if indices.ndim != 2 or values.shape != indices.shape or indices.shape[1] < 1:
                raise InvalidArgumentError(
                    "indices and values must have the same shape (n, k) with k >= 1, "
                    f"got {indices.shape} and {values.shape}")
            if indices.dtype != np.int32 and indices.size and (
                    indices.min() < -_INT32_MAX - 1 or indices.max() > _INT32_MAX):
                # Casting would wrap around silently; the range itself
                # ([0, h)) is checked by the library.
                raise InvalidArgumentError(
                    f"indices must lie in [0, {self._h}), found {indices.min()}..{indices.max()}")
            return (np.ascontiguousarray(indices, dtype=np.int32),
                    np.ascontiguousarray(values, dtype=np.float32))
        raise TypeError(
            "decode expects SparseCodes, an (indices, values) pair or a scipy sparse "
            f"matrix, got {type(codes).__name__}")

    def _csr_arrays(self, matrix) -> tuple[np.ndarray, np.ndarray]:
        if matrix.ndim != 2 or matrix.shape[1] != self._h:
            raise InvalidArgumentError(
                f"the sparse matrix must have {self._h} columns (latent_dim), "
                f"got shape {matrix.shape}")
        csr = matrix.tocsr()
        n = csr.shape[0]
        counts = np.diff(csr.indptr)
        k = max(1, int(counts.max()) if n else 1)
        # Rows with fewer than k entries are padded with (index 0, value 0),
        # which adds exactly nothing to the reconstruction.
        indices = np.zeros((n, k), dtype=np.int32)
        values = np.zeros((n, k), dtype=np.float32)
        rows = np.repeat(np.arange(n), counts)
        slots = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
        indices[rows, slots] = csr.indices
        values[rows, slots] = csr.data
        return indices, values

    inverse_transform = decode

    # ------------------------------------------------------------ lifetime

    def close(self) -> None:
        """Free the C model. Further calls raise :class:`InvalidHandleError`."""
        self._handle.close()

    def __enter__(self) -> "CompresSAE":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __reduce__(self):
        # Pickle (and copy.deepcopy) through the weights: the C handle
        # itself cannot cross processes.
        return (_restore, (self.encoder_w, self.encoder_b, self.decoder_w, self._k,
                           self.transform_output))

    def __repr__(self) -> str:
        state = ", closed" if self.closed else ""
        return (f"CompresSAE(input_dim={self._d}, latent_dim={self._h}, "
                f"k={self._k}{state})")


def _restore(encoder_w, encoder_b, decoder_w, k, transform_output="codes") -> CompresSAE:
    model = CompresSAE.from_weights(encoder_w, encoder_b, decoder_w, k)
    model.transform_output = transform_output
    return model
