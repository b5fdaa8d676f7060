"""The public API: SparseCodes, decode inputs, attributes, library loading."""

import ctypes
import importlib.metadata
import os
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest

import compressae
from helpers import REPO, random_rows

D, H, K = 32, 256, 6


@pytest.fixture
def model():
    with compressae.CompresSAE(D, latent_dim=H, k=K, seed=3) as m:
        yield m


@pytest.fixture
def x(rng):
    return random_rows(rng, 25, D)


def test_package_metadata():
    # The version is written once, as CSAE_VERSION in the C header; the
    # library, the package and (when installed) its metadata all carry it.
    header = (REPO / "include" / "compressae.h").read_text()
    match = re.search(r'^#define CSAE_VERSION "([^"]+)"', header, re.M)
    assert match, "include/compressae.h defines CSAE_VERSION"
    assert compressae.library_version() == match.group(1)
    assert compressae.__version__ == compressae.library_version()
    try:
        installed = importlib.metadata.version("compressae")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is not None and "site-packages" in compressae.__file__:
        assert installed == compressae.__version__
    assert os.path.isfile(compressae.library_path)
    assert isinstance(compressae.blas_name(), str)
    assert compressae._ffi.csae_abi_version() == compressae._ffi.ABI_VERSION == 7


def test_code_path_switches_are_reported():
    # CSAE_DISABLE_BLAS / CSAE_DISABLE_AVX2 are read when the library loads;
    # blas_name() and vector_isa() say which paths this process took.
    assert compressae.vector_isa() in ("avx2+fma", "baseline")
    if os.environ.get("CSAE_DISABLE_BLAS"):
        assert compressae.blas_name() == "none (built-in kernel)"
    if os.environ.get("CSAE_DISABLE_AVX2"):
        assert compressae.vector_isa() == "baseline"


def test_every_c_function_is_typed():
    for name in compressae._ffi._SIGNATURES:
        fn = getattr(compressae._ffi, name)
        assert fn.argtypes is not None, name
    params = compressae._ffi.csae_train_default_params()
    assert params.seed == 0 and not params.progress


def _fit_settings():
    import inspect
    signature = inspect.signature(compressae.CompresSAE.fit)
    return {n: p.default for n, p in signature.parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY and n != "progress"}


def test_fit_takes_the_c_defaults_and_names():
    """fit lists every field of csae_train_params under its C name, each
    defaulting to None (the library's default, not restated), and
    REFERENCE_TRAINING is where the reference recipe differs from it."""
    settings = _fit_settings()
    fields = [name for name, _ in compressae._ffi.csae_train_params._fields_
              if name not in ("struct_size", "progress", "user_data")]
    assert set(settings) == set(fields)
    assert all(value is None for value in settings.values())
    assert compressae.REFERENCE_TRAINING == {
        "epochs": 1, "learning_rate": 1e-3, "warmup_steps": 0, "learning_rate_decay": "constant",
        "validation_fraction": 0.0, "patience": 0, "sparse_similarity_weight": 0.0,
        "validation_steps": 0, "dead_latent_aux_weight": 0.0}


def test_fit_passes_what_it_is_given_and_the_c_defaults_for_the_rest(model, x, monkeypatch):
    seen = {}

    def fake_train(handle, data, n, d, params_ref):
        params = ctypes.cast(params_ref, ctypes.POINTER(compressae._ffi.csae_train_params)).contents
        seen.update({name: getattr(params, name) for name, _ in params._fields_ if name != "progress"})
        return compressae._ffi.CSAE_OK

    monkeypatch.setattr(compressae._ffi, "csae_model_train", fake_train)
    model.fit(x, learning_rate=0.5, shuffle=False, learning_rate_decay="cosine", seed=9)
    defaults = compressae._ffi.csae_train_default_params()
    for name, _ in defaults._fields_:
        if name in ("progress", "user_data"):
            continue
        expected = {"learning_rate": 0.5, "shuffle": 0, "seed": 9,
                    "learning_rate_decay": compressae._ffi.CSAE_LR_COSINE}.get(name, getattr(defaults, name))
        assert seen[name] == expected, name
    # The former names still work, with a warning; given twice is an error.
    for old, new, value in (("lr", "learning_rate", 0.25), ("tol", "tolerance", 0.5),
                            ("lr_decay", "learning_rate_decay", "linear"),
                            ("min_lr_ratio", "min_learning_rate_ratio", 0.5)):
        with pytest.warns(DeprecationWarning, match=f"use {new}="):
            model.fit(x, **{old: value})
        with pytest.raises(TypeError, match="twice"), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            model.fit(x, **{old: value, new: value})
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rte'"):
        model.fit(x, learning_rte=1.0)


def test_attributes_and_repr(model):
    assert (model.input_dim, model.latent_dim, model.k) == (D, H, K)
    assert repr(model) == f"CompresSAE(input_dim={D}, latent_dim={H}, k={K})"
    assert not model.closed
    for name, shape in (("encoder_w", (D, H)), ("encoder_b", (H,)), ("decoder_w", (H, D))):
        w = getattr(model, name)
        assert w.shape == shape and w.dtype == np.float32 and w.flags.c_contiguous
        w[...] = 7  # a fresh copy: changing it leaves the model alone
        assert not np.all(getattr(model, name) == 7)
    assert model.history_.shape == (0,)


def test_set_k(model, x):
    model.k = 3
    assert model.k == 3
    assert model.encode(x).k == 3
    assert model.encode(x, k=5).k == 5


def test_encode_ordering_and_consistency(model, x):
    codes = model.encode(x)
    assert codes.indices.dtype == np.int32 and codes.values.dtype == np.float32
    assert codes.indices.shape == codes.values.shape == (len(x), K)
    assert len(codes) == len(x) and codes.k == K and codes.dim == H
    pre = model.preactivations(x)
    # The k entries of largest |pre|, by decreasing |value|, with their signs.
    np.testing.assert_allclose(np.take_along_axis(pre, codes.indices.astype(np.int64), 1),
                               codes.values, rtol=1e-6, atol=1e-6)
    assert np.all(np.diff(np.abs(codes.values), axis=1) <= 0)
    kth = np.sort(np.abs(pre), axis=1)[:, -K]
    np.testing.assert_allclose(np.abs(codes.values[:, -1]), kth, rtol=1e-6, atol=1e-6)
    # Codes are a prefix: the top-k are the first k of the top-2k.
    np.testing.assert_array_equal(model.encode(x, k=2 * K).indices[:, :K], codes.indices)


def test_encode_is_scale_invariant(model, x):
    a = model.encode(x)
    b = model.encode(x * 1000)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-5, atol=1e-6)


def test_decode_matches_numpy(model, x):
    codes = model.encode(x)
    expected = codes.toarray() @ model.decoder_w
    np.testing.assert_allclose(model.decode(codes), expected, rtol=1e-5, atol=1e-5)
    assert model.decode(codes).dtype == np.float32


def test_decode_input_forms(model, x):
    codes = model.encode(x)
    expected = model.decode(codes)
    np.testing.assert_array_equal(model.decode((codes.indices, codes.values)), expected)
    np.testing.assert_array_equal(
        model.decode([codes.indices.astype(np.int64), codes.values.astype(np.float64)]), expected)
    np.testing.assert_array_equal(model.decode((codes.indices[0], codes.values[0])), expected[:1])
    np.testing.assert_allclose(model.decode(codes.to_csr()), expected, rtol=1e-5, atol=1e-6)
    assert model.inverse_transform(codes).shape == (len(x), D)


def test_decode_scipy_matrix_with_ragged_rows(model):
    sparse = pytest.importorskip("scipy.sparse")
    dense = np.zeros((4, H), np.float32)
    dense[0, [1, 5, 9]] = [1.0, -2.0, 0.5]
    dense[2, 200] = 3.0
    dense[3, :] = 0.01  # a full row
    expected = dense @ model.decoder_w
    for matrix_type in (sparse.csr_matrix, sparse.csc_matrix, sparse.coo_matrix,
                        sparse.csr_array):
        got = model.decode(matrix_type(dense))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert model.decode(sparse.csr_matrix((0, H), dtype=np.float32)).shape == (0, D)
    with pytest.raises(compressae.InvalidArgumentError):
        model.decode(sparse.csr_matrix(np.ones((2, H + 1), np.float32)))


def test_sparse_codes_class(model, x):
    codes = model.encode(x)
    assert repr(codes) == f"SparseCodes(n={len(x)}, k={K}, dim={H})"
    assert codes.shape == (len(x), H)
    assert codes.nbytes == len(x) * K * 8  # the paper's 8k bytes per vector
    one = codes[4]
    assert isinstance(one, compressae.SparseCodes) and len(one) == 1
    np.testing.assert_array_equal(one.indices[0], codes.indices[4])
    part = codes[2:7]
    assert len(part) == 5 and part.dim == H
    np.testing.assert_array_equal(part.values, codes.values[2:7])
    picked = codes[np.array([0, 3, 3])]
    np.testing.assert_array_equal(picked.indices[1], codes.indices[3])
    mask = np.zeros(len(x), bool)
    mask[[1, 2]] = True
    assert len(codes[mask]) == 2
    assert len(codes[-1]) == 1
    with pytest.raises(IndexError):
        codes[len(x)]
    with pytest.raises(TypeError):
        codes[0, 1]
    assert sum(1 for _ in codes) == len(x)
    np.testing.assert_array_equal(model.decode(codes[3:5]), model.decode(codes)[3:5])


def test_sparse_codes_validation():
    ok = compressae.SparseCodes([[1, 2]], [[0.5, -1]], dim=4)
    assert ok.indices.dtype == np.int32 and ok.values.dtype == np.float32
    with pytest.raises(ValueError):
        compressae.SparseCodes([[1, 2]], [[0.5]], dim=4)
    with pytest.raises(ValueError):
        compressae.SparseCodes([1, 2], [0.5, 1], dim=4)
    with pytest.raises(ValueError):
        compressae.SparseCodes([[1.0, 2.0]], [[0.5, 1]], dim=4)
    with pytest.raises(ValueError):
        compressae.SparseCodes([[1, 4]], [[0.5, 1]], dim=4)
    with pytest.raises(ValueError):
        compressae.SparseCodes([[-1, 2]], [[0.5, 1]], dim=4)
    with pytest.raises(ValueError):
        compressae.SparseCodes([[1, 2]], [[0.5, 1]], dim=0)
    with pytest.raises(ValueError):
        compressae.SparseCodes(np.zeros((2, 0), int), np.zeros((2, 0)), dim=4)


def test_to_csr_and_toarray(model, x):
    sparse = pytest.importorskip("scipy.sparse")
    codes = model.encode(x)
    csr = codes.to_csr()
    assert sparse.issparse(csr) and csr.format == "csr"
    assert csr.shape == (len(x), H) and csr.nnz == len(x) * K
    assert csr.has_sorted_indices
    np.testing.assert_array_equal(csr.toarray(), codes.toarray())
    dense = codes.toarray()
    assert dense.shape == (len(x), H)
    assert np.all(np.count_nonzero(dense, axis=1) == K)


def test_to_csr_without_scipy(model, x):
    # Simulate a missing scipy: the error says what to install.
    code = (
        "import sys; sys.modules['scipy'] = None; sys.modules['scipy.sparse'] = None\n"
        "import numpy as np, compressae\n"
        "codes = compressae.SparseCodes([[1]], [[1.0]], dim=3)\n"
        "try:\n    codes.to_csr()\nexcept ImportError as e:\n    print('ImportError:', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "ImportError" in out.stdout and "scipy" in out.stdout, out.stderr


def test_loss_and_gradients_shapes(model, x):
    losses, grads = model.loss_and_gradients(x)
    assert list(losses) == list(compressae.LOSS_NAMES)
    assert losses["L0"] == K
    assert 0 < losses["Cosine"] < 2
    assert grads["encoder_w"].shape == (D, H)
    assert grads["encoder_b"].shape == (H,)
    assert grads["decoder_w"].shape == (H, D)
    # Gradients flow only through the selected (top-4k) latents.
    codes4k = model.encode(x, k=4 * K)
    unused = np.setdiff1d(np.arange(H), codes4k.indices)
    assert np.all(grads["encoder_b"][unused] == 0)
    assert np.all(grads["decoder_w"][unused] == 0)


def test_loss_and_gradients_does_not_update(model, x):
    before = model.encoder_w
    model.loss_and_gradients(x)
    np.testing.assert_array_equal(model.encoder_w, before)


def test_library_env_var_must_exist():
    env = dict(os.environ, COMPRESSAE_LIBRARY="/nonexistent/libCompresSAE.so")
    out = subprocess.run([sys.executable, "-c", "import compressae"], capture_output=True,
                         text=True, env=env)
    assert out.returncode != 0
    assert "COMPRESSAE_LIBRARY" in out.stderr


def test_library_env_var_is_used():
    env = dict(os.environ, COMPRESSAE_LIBRARY=compressae.library_path)
    out = subprocess.run([sys.executable, "-c", "import compressae; print(compressae.library_path)"],
                         capture_output=True, text=True, env=env)
    assert out.stdout.strip() == compressae.library_path, out.stderr


def test_swift_backtracer_disabled_by_default():
    out = subprocess.run([sys.executable, "-c",
                          "import os, compressae; print(os.environ['SWIFT_BACKTRACE'])"],
                         capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "SWIFT_BACKTRACE"})
    assert out.stdout.strip() == "enable=no", out.stderr


def test_dataset_helper():
    x = compressae.datasets.wordnet10k()
    assert x.shape == (10000, 384) and x.dtype == np.float32
    texts = compressae.datasets.wordnet10k_texts()
    assert len(texts) == 10000 and all(texts[:3])


def test_dataset_directory_from_environment(tmp_path, monkeypatch):
    source = REPO / "python" / "compressae" / "data" / "wordnet10k_minilm384_f16.npy"
    rows = np.load(source)[:7]
    np.save(tmp_path / "wordnet10k_minilm384_f16.npy", rows)
    monkeypatch.setenv("COMPRESSAE_DATA_DIR", str(tmp_path))
    assert compressae.datasets.wordnet10k().shape == (7, 384)
    # A directory without the file is an error naming the variable, not a
    # silent fall-back to another copy.
    with pytest.raises(FileNotFoundError, match="COMPRESSAE_DATA_DIR"):
        compressae.datasets.wordnet10k_texts()


def _blas_name_in_subprocess(**env_changes):
    env = dict(os.environ)
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    out = subprocess.run([sys.executable, "-c", "import compressae; print(compressae.blas_name())"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_blas_fallback_library_is_loaded_when_no_other():
    # CSAE_BLAS_LIBRARY is tried first and the system's BLAS next; the
    # fallback (scipy-openblas32's library when installed) only then.
    # A file that is no BLAS is skipped.
    name = _blas_name_in_subprocess(CSAE_BLAS_LIBRARY=None, CSAE_DISABLE_BLAS=None,
                                    CSAE_BLAS_FALLBACK_LIBRARY=compressae.library_path)
    assert "libCompresSAE" not in name
    pip_blas = compressae._ffi.pip_blas_library()
    if pip_blas is None:
        pytest.skip("scipy-openblas32 is not installed")
    system = _blas_name_in_subprocess(CSAE_BLAS_LIBRARY=None, CSAE_DISABLE_BLAS=None,
                                      CSAE_BLAS_FALLBACK_LIBRARY="")
    expected = system if not system.startswith("none") else "(libscipy_openblas"
    name = _blas_name_in_subprocess(CSAE_BLAS_LIBRARY=None, CSAE_DISABLE_BLAS=None,
                                    CSAE_BLAS_FALLBACK_LIBRARY=None)
    assert name.startswith("OpenBLAS") and expected in name, (name, system)
    assert _blas_name_in_subprocess(CSAE_DISABLE_BLAS="1").startswith("none")


def test_models_alive_at_interpreter_exit_are_harmless():
    # Models still referenced (globals, cycles, a closed one) when the
    # interpreter exits: finalisers must neither raise nor crash.
    code = (
        "import numpy as np, compressae\n"
        "a = compressae.CompresSAE(8, latent_dim=64, k=2)\n"
        "b = compressae.CompresSAE(8, latent_dim=64, k=2); b.close()\n"
        "c = compressae.CompresSAE(8, latent_dim=64, k=2); c.self_ref = c\n"
        "codes = a.encode(np.ones((3, 8)))\n"
        "print('done')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "done"
    assert out.stderr == ""
