"""scikit-learn's estimator protocol: get_params/set_params, clone, Pipeline,
fit(X, y), n_features_in_, transform_output. scikit-learn is optional: the
tests that need it skip without it; the protocol itself is tested always."""

import pickle

import numpy as np
import pytest

import compressae
from compressae import CompresSAE, SparseCodes


@pytest.fixture(scope="module")
def X():
    return compressae.datasets.wordnet10k()[:1200]


def test_get_params_are_the_constructor_arguments():
    m = CompresSAE(384, latent_dim=512, k=8, seed=3, init="reference", transform_output="csr")
    assert m.get_params() == {"input_dim": 384, "latent_dim": 512, "k": 8, "seed": 3,
                              "init": "reference", "transform_output": "csr"}
    again = CompresSAE(**m.get_params())
    assert again.get_params() == m.get_params()
    np.testing.assert_array_equal(again.encoder_w, m.encoder_w)  # same seed, same init
    assert m.n_features_in_ == 384


def test_set_params_keeps_or_rebuilds_the_weights(X):
    m = CompresSAE(384, latent_dim=256, k=8, seed=1)
    m.fit(X, epochs=1, batch_size=400, validation_fraction=0.0, patience=0, learning_rate_decay="constant")
    weights = m.decoder_w
    assert m.set_params(k=4, transform_output="dense") is m
    assert m.k == 4 and m.transform_output == "dense"
    np.testing.assert_array_equal(m.decoder_w, weights)  # k alone keeps the training
    assert m.transform(X[:3]).shape == (3, 256)
    m.set_params(latent_dim=128)  # a new shape: a new, untrained model
    assert (m.latent_dim, m.k, m.transform_output) == (128, 4, "dense")
    np.testing.assert_array_equal(m.decoder_w, CompresSAE(384, 128, k=4, seed=1).decoder_w)
    with pytest.raises(compressae.InvalidArgumentError, match="invalid parameter"):
        m.set_params(alpha=1)
    with pytest.raises(compressae.InvalidArgumentError, match="transform_output"):
        m.set_params(transform_output="pandas")
    with pytest.raises(compressae.InvalidArgumentError, match="transform_output"):
        CompresSAE(384, transform_output="list")


def test_fit_takes_y_and_keyword_settings(X):
    m = CompresSAE(384, latent_dim=256, k=8)
    assert m.fit(X, None, epochs=1, batch_size=600) is m
    assert m.fit(X, np.zeros(len(X)), epochs=1, batch_size=600) is m
    with pytest.raises(TypeError):
        m.fit(X, None, 600)  # settings are keyword-only


def test_transform_outputs(X):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    m = CompresSAE(384, latent_dim=256, k=8)
    codes = m.encode(X[:50])
    assert isinstance(m.transform(X[:50]), SparseCodes)
    m.transform_output = "csr"
    csr = m.transform(X[:50])
    assert scipy_sparse.isspmatrix_csr(csr) and csr.shape == (50, 256)
    np.testing.assert_array_equal(csr.toarray(), codes.toarray())
    m.transform_output = "dense"
    np.testing.assert_array_equal(m.transform(X[:50]), codes.toarray())
    # (the CSR's sorted entries add up in another order)
    np.testing.assert_allclose(m.inverse_transform(csr), m.decode(codes), rtol=0, atol=1e-6)
    # The setting survives pickling (how Spark and Ray ship models).
    assert pickle.loads(pickle.dumps(m)).transform_output == "dense"
    out = m.fit_transform(X, epochs=1, batch_size=600)
    assert isinstance(out, np.ndarray) and out.shape == (len(X), 256)


def test_sklearn_clone():
    base = pytest.importorskip("sklearn.base")
    m = CompresSAE(384, latent_dim=256, k=8, seed=5, transform_output="csr")
    c = base.clone(m)
    assert c is not m and c.get_params() == m.get_params()
    assert base.is_transformer(m) if hasattr(base, "is_transformer") else True


def test_sklearn_pipeline_with_a_downstream_estimator(X):
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    y = (X[:, 0] > np.median(X[:, 0])).astype(int)
    pipe = make_pipeline(CompresSAE(384, latent_dim=256, k=16, transform_output="csr"),
                         LogisticRegression(max_iter=300))
    pipe.fit(X, y, compressae__epochs=3, compressae__batch_size=400)
    assert pipe.named_steps["compressae"].history_.size > 0
    accuracy = pipe.score(X, y)
    assert accuracy > 0.6, accuracy  # the codes carry the signal (chance is 0.5)
    fresh = clone(pipe)
    assert fresh.named_steps["compressae"].get_params() == pipe.named_steps["compressae"].get_params()
    assert fresh.named_steps["compressae"].history_.size == 0
