"""compressae's encoder as a sentence-transformers ``SparseEncoder``.

Built by :func:`compressae.export.to_sentence_transformers`. Two modules:

- an input module: :class:`EmbeddingInput` (the inputs are dense embeddings,
  one 1-D array per input) or any sentence-transformers module that ends
  with a ``sentence_embedding`` (a dense model in front, e.g. a
  ``Transformer`` + ``Pooling`` pair or a ``StaticEmbedding``, for texts);
- :class:`CompresSAEEncoder`, which encodes that embedding with the
  compressae library itself, so ``SparseEncoder.encode`` returns exactly
  ``CompresSAE.encode``'s codes as dense ``[n, latent_dim]`` rows (or their
  sign split over ``2 * latent_dim`` when ``nonnegative``).

The encoder is for inference: it has no gradient (training it in
sentence-transformers is not supported; train with ``CompresSAE.fit``).
"""

from __future__ import annotations

import os

import numpy as np
import torch
from sentence_transformers.sparse_encoder.modules import InputModule, Module

from .model import CompresSAE

_MODEL_FILE = "compressae.csae"


class EmbeddingInput(InputModule):
    """Input module whose inputs are dense embeddings (1-D arrays or
    tensors of ``dim`` values): it stacks a batch of them as the
    ``sentence_embedding`` feature."""

    config_keys = ["dim"]
    save_in_root = False

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)

    @property
    def modalities(self) -> list:
        # An embedding is none of sentence-transformers' media types; a 1-D
        # array is inferred as audio, a 2-D one as an image.
        return ["text", "image", "audio"]

    def preprocess(self, inputs, prompt: str | None = None, **kwargs) -> dict:
        rows = []
        for x in inputs:
            if isinstance(x, torch.Tensor):
                x = x.detach().to(device="cpu", dtype=torch.float32).numpy()
            row = np.asarray(x, dtype=np.float32).reshape(-1)
            if row.shape[0] != self.dim:
                raise ValueError(f"an embedding input must have {self.dim} values, got shape {np.shape(x)}")
            rows.append(row)
        return {"sentence_embedding": torch.from_numpy(np.stack(rows))}

    def forward(self, features: dict, **kwargs) -> dict:
        return features

    def get_embedding_dimension(self) -> int:
        return self.dim

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder=None,
             revision=None, local_files_only: bool = False, **kwargs):
        config = cls.load_config(model_name_or_path=model_name_or_path, subfolder=subfolder, token=token,
                                 cache_folder=cache_folder, revision=revision, local_files_only=local_files_only)
        return cls(**config)


class CompresSAEEncoder(Module):
    """compressae's encoder as a sentence-transformers module: the
    ``sentence_embedding`` feature becomes its k-sparse code, dense
    ``[batch, latent_dim]`` (``nonnegative``: the sign split, ``[batch, 2 *
    latent_dim]``, every value >= 0). ``max_active_dims`` (a keyword of
    ``SparseEncoder.encode``) encodes at that k instead (at most the model's)."""

    config_keys = ["nonnegative", "k"]
    forward_kwargs = {"max_active_dims"}

    def __init__(self, model: CompresSAE, nonnegative: bool = False, k: int | None = None):
        super().__init__()
        self.model = model
        self.nonnegative = bool(nonnegative)
        self.k = int(k) if k is not None else int(model.k)

    def forward(self, features: dict, max_active_dims: int | None = None) -> dict:
        x = features["sentence_embedding"]
        k = self.k if max_active_dims is None else min(int(max_active_dims), self.k)
        codes = self.model.encode(x.detach().to(device="cpu", dtype=torch.float32).numpy(), k=k)
        if self.nonnegative:
            codes = codes.to_nonnegative()
        dense = torch.from_numpy(codes.toarray()).to(x.device)
        features["sentence_embedding"] = dense
        return features

    def get_embedding_dimension(self) -> int:
        return self.model.latent_dim * (2 if self.nonnegative else 1)

    def save(self, output_path: str, *args, safe_serialization: bool = True, **kwargs) -> None:
        self.save_config(output_path)
        self.model.save(os.path.join(output_path, _MODEL_FILE))

    @classmethod
    def load(cls, model_name_or_path: str, subfolder: str = "", token=None, cache_folder=None,
             revision=None, local_files_only: bool = False, **kwargs):
        hub = dict(subfolder=subfolder, token=token, cache_folder=cache_folder, revision=revision,
                   local_files_only=local_files_only)
        config = cls.load_config(model_name_or_path=model_name_or_path, **hub)
        path = cls.load_file_path(model_name_or_path, filename=_MODEL_FILE, **hub)
        return cls(CompresSAE.load(path), **config)


def build(model: CompresSAE, front=None, nonnegative: bool = False, k: int | None = None):
    """The ``SparseEncoder`` (see :func:`compressae.export.to_sentence_transformers`)."""
    from sentence_transformers import SparseEncoder

    if front is None:
        front = [EmbeddingInput(model.input_dim)]
    elif not isinstance(front, (list, tuple)):
        front = [front]
    # The codes are compared by dot product, as compressae's sparse mode does (on normalised codes).
    return SparseEncoder(modules=[*front, CompresSAEEncoder(model, nonnegative=nonnegative, k=k)],
                         similarity_fn_name="dot")
