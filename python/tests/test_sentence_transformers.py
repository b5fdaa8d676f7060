"""compressae's encoder as a sentence-transformers SparseEncoder (built from local modules: no hub download)."""

import numpy as np
import pytest

import compressae

st = pytest.importorskip("sentence_transformers", minversion="5.0",
                         reason="sentence-transformers >= 5 is not installed")
torch = pytest.importorskip("torch", reason="PyTorch is not installed")


@pytest.fixture(scope="module")
def model_and_data():
    from helpers import WORDNET

    X = np.load(WORDNET)[:600].astype(np.float32)
    model = compressae.CompresSAE(384, latent_dim=512, k=8, seed=1)
    model.fit(X, epochs=1, batch_size=200)
    return model, X[:40]


def _encode(encoder, inputs, **kw):
    # One batch for all inputs: the codes of model.encode on the same rows, bit for bit.
    return np.asarray(encoder.encode(inputs, batch_size=len(inputs), convert_to_sparse_tensor=False, **kw))


def test_embeddings_in_codes_out_and_saved(model_and_data, tmp_path):
    model, X = model_and_data
    encoder = compressae.export.to_sentence_transformers(model)
    assert isinstance(encoder, st.SparseEncoder)
    codes = model.encode(X)
    np.testing.assert_array_equal(_encode(encoder, list(X)), codes.toarray())
    # Tensors of another dtype, one per input.
    bf16 = [torch.from_numpy(x).to(torch.bfloat16) for x in X]
    widened = np.stack([x.float().numpy() for x in bf16])
    np.testing.assert_array_equal(_encode(encoder, bf16), model.encode(widened).toarray())
    # Smaller batches: the same latents, values to float32 rounding (the GEMM sums another batch).
    small = np.asarray(encoder.encode(list(X), batch_size=7, convert_to_sparse_tensor=False))
    np.testing.assert_array_equal(small != 0, codes.toarray() != 0)
    np.testing.assert_allclose(small, codes.toarray(), rtol=0, atol=1e-6)
    # max_active_dims: the k' prefix, as model.encode(k=k').
    np.testing.assert_array_equal(_encode(encoder, list(X), max_active_dims=3), model.encode(X, k=3).toarray())
    # Saved and loaded back (the module is compressae's: trust_remote_code).
    encoder.save(str(tmp_path / "st"))
    loaded = st.SparseEncoder(str(tmp_path / "st"), trust_remote_code=True)
    np.testing.assert_array_equal(_encode(loaded, list(X)), codes.toarray())


def test_nonnegative_is_the_sign_split(model_and_data):
    model, X = model_and_data
    encoder = compressae.export.to_sentence_transformers(model, nonnegative=True)
    out = _encode(encoder, list(X))
    assert out.shape == (len(X), 2 * model.latent_dim)
    assert (out >= 0).all()
    np.testing.assert_array_equal(out, model.encode(X).to_nonnegative().toarray())
    # The split keeps the signed dot product through [q, -q] against [y+, y-].
    signed = model.encode(X).toarray()
    q = np.concatenate([signed, -signed], axis=1)
    np.testing.assert_allclose(q @ out.T, signed @ signed.T, rtol=1e-5, atol=1e-6)


def test_texts_through_a_dense_model_in_front(model_and_data):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding

    model, X = model_and_data
    words = ["[UNK]", "the", "weather", "is", "lovely", "today", "cold", "dog", "cat", "runs"]
    tokenizer = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = Whitespace()
    table = X[: len(words)]  # a word's vector: a WordNet embedding (a stand-in dense model)
    front = StaticEmbedding(tokenizer, embedding_weights=table)
    encoder = compressae.export.to_sentence_transformers(model, front=front)
    texts = ["the weather is lovely today", "the dog runs", "cat"]
    out = np.asarray(encoder.encode(texts, batch_size=3, convert_to_sparse_tensor=False))
    dense = np.stack([table[[words.index(w) for w in t.split()]].mean(axis=0) for t in texts])
    expected = model.encode(dense.astype(np.float32)).toarray()
    np.testing.assert_array_equal(out != 0, expected != 0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=1e-5)
    assert encoder.get_embedding_dimension() == model.latent_dim


def test_bad_arguments(model_and_data):
    model, X = model_and_data
    with pytest.raises(TypeError):
        compressae.export.to_sentence_transformers("not a model")
    with pytest.raises(compressae.InvalidArgumentError):
        compressae.export.to_sentence_transformers(model, k=model.k + 1)
    encoder = compressae.export.to_sentence_transformers(model)
    with pytest.raises(ValueError, match="384 values"):
        encoder.encode([X[0][:100]])
