"""Bad input gives clear exceptions, never a crash; odd layouts are converted."""

import ctypes
import subprocess
import sys

import numpy as np
import pytest

import compressae
from compressae import _ffi
from helpers import random_rows, fit_ref

D, H, K = 16, 128, 4


@pytest.fixture
def model():
    with compressae.CompresSAE(D, latent_dim=H, k=K, seed=1) as m:
        yield m


@pytest.fixture
def x(rng):
    return random_rows(rng, 40, D)


def same_codes(a, b):
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.values, b.values)


# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("args", [(0, H, K), (-3, H, K), (D, 0, K), (D, -1, K), (D, H, 0),
                                  (D, H, -2)])
def test_bad_sizes(args):
    with pytest.raises(compressae.InvalidArgumentError) as info:
        compressae.CompresSAE(*args)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, compressae.Error)


@pytest.mark.parametrize("args", [(0, H, K), (D, 0, K), (D, H, 0), (D, H, H + 1), (-1, H, K)])
def test_bad_sizes_reach_the_library_safely(args):
    # The same checks exist in C: call the raw function, bypassing Python's.
    out = _ffi.csae_model_p()
    status = _ffi.csae_model_create(*args, 0, 0, ctypes.byref(out))
    assert status == _ffi.CSAE_ERR_INVALID_ARGUMENT
    assert _ffi.last_error()
    assert not out.value


def test_non_integer_sizes():
    with pytest.raises(TypeError):
        compressae.CompresSAE(16.0)
    with pytest.raises(TypeError):
        compressae.CompresSAE(16, k=True)
    assert compressae.CompresSAE(np.int64(16), latent_dim=np.int32(64), k=2).latent_dim == 64


def test_k_larger_than_latent_dim(model, x):
    with pytest.raises(compressae.InvalidArgumentError, match=str(H)):
        compressae.CompresSAE(D, latent_dim=H, k=H + 1)
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(x, k=H + 1)
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(x, k=0)
    with pytest.raises(compressae.InvalidArgumentError):
        model.k = H + 1
    assert model.k == K  # unchanged by the refused assignment
    codes = model.encode(x, k=H)  # k == h is allowed: every latent
    assert codes.k == H


def test_4k_larger_than_latent_dim_in_training(x):
    with compressae.CompresSAE(D, latent_dim=H, k=H // 4 + 1) as m:
        m.encode(x)  # encoding only needs k <= h
        with pytest.raises(compressae.InvalidArgumentError, match="4"):
            fit_ref(m, x, batch_size=8)
        with pytest.raises(compressae.InvalidArgumentError):
            m.loss_and_gradients(x)
        assert m.history_.shape == (0,)


# --------------------------------------------------------------- values

@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("method", ["encode", "preactivations", "fit", "loss_and_gradients"])
def test_non_finite_values_name_the_row(model, x, bad, method):
    x = x.copy()
    x[13, 5] = bad
    with pytest.raises(compressae.InvalidArgumentError, match="13") as info:
        getattr(model, method)(x)
    assert info.value.status == _ffi.CSAE_ERR_INVALID_ARGUMENT


@pytest.mark.parametrize("method", ["encode", "preactivations", "fit", "loss_and_gradients"])
def test_zero_row_names_the_row(model, x, method):
    x = x.copy()
    x[27] = 0
    with pytest.raises(compressae.InvalidArgumentError, match="27"):
        getattr(model, method)(x)


def test_training_refusal_leaves_weights_unchanged(model, x):
    before = model.encoder_w
    x = x.copy()
    x[-1, 0] = np.nan
    with pytest.raises(ValueError):
        fit_ref(model, x, batch_size=8)
    np.testing.assert_array_equal(model.encoder_w, before)


# ---------------------------------------------------- dtypes and layouts

def test_float64_and_int_inputs_are_converted(model, x):
    expected = model.encode(x)
    same_codes(model.encode(x.astype(np.float64)), expected)
    xi = np.round(x * 10).astype(np.int64)
    same_codes(model.encode(xi), model.encode(xi.astype(np.float32)))
    same_codes(model.encode(x.astype(np.float16)), model.encode(x.astype(np.float16).astype(np.float32)))
    same_codes(model.encode(x.tolist()), expected)


def test_non_contiguous_inputs(model, rng):
    big = random_rows(rng, 80, 2 * D)
    strided_cols = big[:, ::2]
    strided_rows = big[::2, :D]
    fortran = np.asfortranarray(big[:, :D])
    for view in (strided_cols, strided_rows, fortran, big[:, :D].T.copy().T):
        assert not view.flags.c_contiguous
        same_codes(model.encode(view), model.encode(np.ascontiguousarray(view)))
    np.testing.assert_array_equal(model.preactivations(fortran),
                                  model.preactivations(np.ascontiguousarray(fortran)))


def test_fit_accepts_non_contiguous_float64(x):
    runs = []
    for data in (x, np.asfortranarray(x.astype(np.float64))):
        with compressae.CompresSAE(D, latent_dim=H, k=K, seed=1) as m:
            fit_ref(m, data, batch_size=8, seed=0)
            runs.append(m.history_)
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("bad", [
    np.zeros((3, D), dtype=np.complex64),
    np.array([["a"] * D]),
    np.zeros((2, 3, D), dtype=np.float32),
    np.zeros((3, D + 1), dtype=np.float32),
    np.float32(1.0),
])
def test_bad_shapes_and_dtypes(model, bad):
    with pytest.raises(compressae.InvalidArgumentError):
        model.encode(bad)


def test_wrong_width_message(model):
    with pytest.raises(ValueError, match=f"input_dim is {D}"):
        model.encode(np.ones((2, D + 3)))


def test_one_dimensional_input_is_one_row(model, x):
    codes = model.encode(x[3])
    assert len(codes) == 1
    same_codes(codes, model.encode(x)[3])
    assert model.preactivations(x[3]).shape == (1, H)
    with pytest.raises(compressae.InvalidArgumentError):
        fit_ref(model, x[3])


def test_empty_input(model):
    codes = model.encode(np.zeros((0, D)))
    assert codes.indices.shape == (0, K) and codes.values.shape == (0, K)
    assert model.decode(codes).shape == (0, D)
    assert model.preactivations(np.zeros((0, D))).shape == (0, H)
    with pytest.raises(compressae.InvalidArgumentError):
        fit_ref(model, np.zeros((0, D)))
    with pytest.raises(compressae.InvalidArgumentError):
        model.loss_and_gradients(np.zeros((0, D)))


# --------------------------------------------------------------- decode

def test_decode_out_of_range_indices(model, x):
    codes = model.encode(x)
    for bad in (H, -1, 2**31 - 1):
        indices = codes.indices.copy()
        indices[7, 1] = bad
        with pytest.raises(compressae.InvalidArgumentError) as info:
            model.decode((indices, codes.values))
        assert info.value.status == _ffi.CSAE_ERR_INVALID_ARGUMENT  # from the library
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode((np.full((1, 2), 2**40), np.ones((1, 2))))
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.SparseCodes(np.array([[H]]), np.array([[1.0]]), dim=H)


def test_decode_non_finite_values(model, x):
    codes = model.encode(x)
    values = codes.values.copy()
    values[2, 0] = np.nan
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode((codes.indices, values))


def test_decode_wrong_dim_and_types(model, x):
    codes = model.encode(x)
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode(compressae.SparseCodes(codes.indices, codes.values, dim=H + 1))
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode((codes.indices.astype(np.float32), codes.values))
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode((codes.indices, codes.values[:, :2]))
    with pytest.raises(TypeError):
        model.decode(codes.values)


def test_from_weights_validation():
    ew = np.zeros((D, H), np.float32)
    eb = np.zeros(H, np.float32)
    dw = np.eye(H, D, dtype=np.float32)
    with pytest.raises(compressae.InvalidArgumentError, match="encoder_b"):
        compressae.CompresSAE.from_weights(ew, eb[:-1], dw, K)
    with pytest.raises(compressae.InvalidArgumentError, match="decoder_w"):
        compressae.CompresSAE.from_weights(ew, eb, dw.T, K)
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE.from_weights(ew[0], eb, dw, K)
    bad = ew.copy()
    bad[1, 2] = np.inf
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE.from_weights(bad, eb, dw, K)
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.CompresSAE.from_weights(ew, eb, dw, H + 1)


# --------------------------------------------------------- closed models

def test_closed_model_raises(model, x, tmp_path):
    model.close()
    model.close()  # twice is fine
    assert model.closed
    assert "closed" in repr(model)
    assert model.k == K  # cached attributes stay readable
    for call in (lambda: model.encode(x), lambda: model.decode((np.zeros((1, 1), np.int32),
                                                                 np.ones((1, 1), np.float32))),
                 lambda: fit_ref(model, x), lambda: model.encoder_w,
                 lambda: model.save(tmp_path / "m.safetensors"),
                 lambda: model.preactivations(x), lambda: model.loss_and_gradients(x)):
        with pytest.raises(compressae.InvalidHandleError):
            call()
    with pytest.raises(compressae.Error):
        model.k = 2


def test_context_manager_closes(x):
    with compressae.CompresSAE(D, latent_dim=H, k=K) as m:
        m.encode(x)
    assert m.closed
    with pytest.raises(compressae.InvalidHandleError):
        m.encode(x)


FREED_HANDLE_SCRIPT = """
import ctypes, numpy as np
from compressae import _ffi
D, H, K = 16, 128, 4
x = np.ones((3, D), np.float32)
idx = np.zeros((3, K), np.int32)
val = np.zeros((3, K), np.float32)
out = _ffi.csae_model_p()
assert _ffi.csae_model_create(D, H, K, 0, 0, ctypes.byref(out)) == _ffi.CSAE_OK
handle = out.value
_ffi.csae_model_free(handle)
_ffi.csae_model_free(handle)  # freeing twice is harmless (registry)
_ffi.csae_model_free(None)
status = _ffi.csae_model_encode(handle, _ffi.f32_ptr(x), 3, D, None, _ffi.i32_ptr(idx),
                                _ffi.f32_ptr(val), idx.size, None)
assert status == _ffi.CSAE_ERR_INVALID_HANDLE, status
assert _ffi.last_error()
status = _ffi.csae_model_encode(None, _ffi.f32_ptr(x), 3, D, None, _ffi.i32_ptr(idx),
                                _ffi.f32_ptr(val), idx.size, None)
assert status in (_ffi.CSAE_ERR_INVALID_HANDLE, _ffi.CSAE_ERR_INVALID_ARGUMENT), status
# A pointer the library never handed out is refused too, not dereferenced.
bogus = ctypes.addressof(ctypes.create_string_buffer(256))
assert _ffi.csae_model_set_k(bogus, 2) == _ffi.CSAE_ERR_INVALID_HANDLE
print("survived")
"""


def test_freed_and_bogus_handles_at_the_c_level():
    # In a child process: were the registry missing, this would crash, and
    # the crash must fail this test rather than kill the whole test run.
    result = subprocess.run([sys.executable, "-c", FREED_HANDLE_SCRIPT],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "survived"


def test_null_pointers_at_the_c_level(model, x):
    handle = model._handle._pointer
    idx = np.zeros((len(x), K), np.int32)
    status = _ffi.csae_model_encode(handle, None, len(x), D, None, _ffi.i32_ptr(idx), None, idx.size, None)
    assert status == _ffi.CSAE_ERR_INVALID_ARGUMENT
    status = _ffi.csae_model_encode(handle, _ffi.f32_ptr(x), -5, D, None, _ffi.i32_ptr(idx),
                                    _ffi.f32_ptr(np.zeros_like(idx, dtype=np.float32)), idx.size, None)
    assert status == _ffi.CSAE_ERR_INVALID_ARGUMENT
    # Buffers smaller than n x k (their capacity says so) are refused, not overrun.
    status = _ffi.csae_model_encode(handle, _ffi.f32_ptr(x), len(x), D, None, _ffi.i32_ptr(idx),
                                    _ffi.f32_ptr(np.zeros_like(idx, dtype=np.float32)), idx.size - 1, None)
    assert status == _ffi.CSAE_ERR_INVALID_ARGUMENT and "capacity" in _ffi.last_error()
    assert _ffi.csae_model_save(handle, None) == _ffi.CSAE_ERR_INVALID_ARGUMENT
    out = _ffi.csae_model_p()
    assert _ffi.csae_model_load(None, 0, ctypes.byref(out)) == _ffi.CSAE_ERR_INVALID_ARGUMENT
    # A too-small buffer for copy_weights is refused, not overrun.
    small = np.zeros(3, np.float32)
    status = _ffi.csae_model_copy_weights(handle, _ffi.f32_ptr(small), small.size,
                                          None, 0, None, 0)
    assert status == _ffi.CSAE_ERR_INVALID_ARGUMENT
    hist = np.zeros(1, np.float32)
    length = ctypes.c_int64()
    assert _ffi.csae_model_copy_history(handle, _ffi.CSAE_HISTORY_TRAINING_LOSS, _ffi.f32_ptr(hist), -1,
                                        ctypes.byref(length)) != _ffi.CSAE_OK
    assert _ffi.csae_model_copy_history(handle, 99, None, 0, ctypes.byref(length)) != _ffi.CSAE_OK
