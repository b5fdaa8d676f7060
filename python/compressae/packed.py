"""Packed codes: :class:`PackedCodes`, made by :meth:`SparseCodes.pack`.

A packed row holds a float32 scale, the row's latent indices bit-packed
(fixed width ``ceil(log2 h)`` bits, or Elias-Fano, whichever is smaller by
default) and its values as signed 8- or 4-bit levels of that scale:
``4 + ceil((index bits + k * bits) / 8)`` bytes (docs/file-formats.md,
"Packed codes"). Packing and unpacking run in the C library, which verifies
every row of a buffer before it unpacks it.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np

from . import _ffi
from ._args import _choice, _path
from ._handle import check
from .errors import InvalidArgumentError

__all__ = ["PackedCodes"]

_CODINGS = {"auto": _ffi.CSAE_CODING_AUTO, "fixed-width": _ffi.CSAE_CODING_FIXED_WIDTH,
            "elias-fano": _ffi.CSAE_CODING_ELIAS_FANO}
_CODING_NAMES = {_ffi.CSAE_CODING_FIXED_WIDTH: "fixed-width", _ffi.CSAE_CODING_ELIAS_FANO: "elias-fano"}


def _bytes_ptr(data: bytes):
    """A uint8_t pointer into ``data`` itself (no copy; the library only reads it)."""
    view = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, dtype=np.uint8)
    return view.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))


def row_bytes(dim: int, k: int, bits: int = 8, index_coding: str = "auto") -> int:
    """Bytes of one packed row of ``k`` nonzeros over ``dim`` latents."""
    out = ctypes.c_int64()
    check(_ffi.csae_packed_size(int(dim), int(k), int(bits), _choice(index_coding, _CODINGS, "index_coding"), 0,
                                ctypes.byref(out), None, None))
    return out.value


def pack(codes, bits: int = 8, index_coding: str = "auto") -> "PackedCodes":
    """Pack :class:`~compressae.SparseCodes` (see :meth:`SparseCodes.pack`)."""
    if isinstance(bits, bool) or bits not in (4, 8):
        raise InvalidArgumentError(f"bits must be 8 or 4, got {bits!r}")
    coding = _choice(index_coding, _CODINGS, "index_coding")
    n, k = codes.indices.shape
    total = ctypes.c_int64()
    check(_ffi.csae_packed_size(codes.dim, k, bits, coding, n, None, ctypes.byref(total), None))
    out = np.empty(total.value, dtype=np.uint8)
    check(_ffi.csae_codes_pack(_ffi.i32_ptr(codes.indices), _ffi.f32_ptr(codes.values), n, k, codes.dim, bits,
                               coding, out.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), out.size, None))
    return PackedCodes._wrap(out.tobytes())


class PackedCodes:
    """k-sparse codes in the packed byte layout (see the module's doc).

    Made by :meth:`SparseCodes.pack` or :meth:`frombytes` / :meth:`load`.
    Cosine rankings depend only on the levels: a packed index
    (``SparseIndex(..., storage="packed8")``) ranks items exactly as brute
    force over :meth:`unpack`'s codes.

    Attributes
    ----------
    n, k, dim : int
        Rows, nonzeros per row, latent dimension.
    bits : int
        Bits per value level, 8 or 4.
    index_coding : str
        ``"fixed-width"`` or ``"elias-fano"``.
    bytes_per_row : int
        Exact bytes of one packed row.
    """

    __slots__ = ("_data", "n", "k", "dim", "bits", "index_coding", "bytes_per_row")

    @classmethod
    def _wrap(cls, data: bytes) -> "PackedCodes":
        packed = cls.__new__(cls)
        n, k, h = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        bits, coding = ctypes.c_int32(), ctypes.c_int32()
        check(_ffi.csae_packed_info(_bytes_ptr(data), len(data), ctypes.byref(n), ctypes.byref(k), ctypes.byref(h),
                                    ctypes.byref(bits), ctypes.byref(coding)))
        packed._data = bytes(data)
        packed.n, packed.k, packed.dim = n.value, k.value, h.value
        packed.bits, packed.index_coding = bits.value, _CODING_NAMES[coding.value]
        packed.bytes_per_row = row_bytes(packed.dim, packed.k, packed.bits, packed.index_coding)
        return packed

    @classmethod
    def frombytes(cls, data) -> "PackedCodes":
        """Packed codes from :meth:`tobytes`'s bytes. The header is checked
        here; every row is verified by :meth:`unpack`, which raises
        :class:`~compressae.FormatError` for a damaged or crafted buffer."""
        return cls._wrap(bytes(data))

    def tobytes(self) -> bytes:
        """The serialized form: a 28-byte header, then ``n * bytes_per_row`` bytes."""
        return self._data

    @property
    def nbytes(self) -> int:
        """Bytes of the packed rows (``n * bytes_per_row``; the header excluded)."""
        return self.n * self.bytes_per_row

    def __len__(self) -> int:
        return self.n

    def unpack(self):
        """The :class:`~compressae.SparseCodes` with dequantised values
        (``level * scale``), entries of a row ordered by decreasing ``|value|``."""
        from .model import SparseCodes
        indices = np.empty((self.n, self.k), dtype=np.int32)
        values = np.empty((self.n, self.k), dtype=np.float32)
        check(_ffi.csae_codes_unpack(_bytes_ptr(self._data), len(self._data), _ffi.i32_ptr(indices), _ffi.f32_ptr(values),
                                     indices.size))
        return SparseCodes._wrap(indices, values, self.dim)

    def save(self, path) -> None:
        """Write :meth:`tobytes` to ``path`` (replaced atomically)."""
        path = _path(path)
        temporary = path + f".tmp-{os.getpid()}".encode()
        with open(temporary, "wb") as f:
            f.write(self._data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path) -> "PackedCodes":
        """Read packed codes written by :meth:`save`."""
        with open(_path(path), "rb") as f:
            return cls.frombytes(f.read())

    def __eq__(self, other) -> bool:
        return isinstance(other, PackedCodes) and self._data == other._data

    def __hash__(self) -> int:
        return hash(self._data)

    def __repr__(self) -> str:
        return (f"PackedCodes(n={self.n}, k={self.k}, dim={self.dim}, bits={self.bits}, "
                f"index_coding={self.index_coding!r}, bytes_per_row={self.bytes_per_row})")
