"""The small real dataset shipped with the package.

``wordnet10k``: 10,000 WordNet 3.0 synset texts embedded with the
sentence-transformers model all-MiniLM-L6-v2 (384-d, unit norm), stored as
float16. See ``compressae/data/README.md`` for how it was made and its
licence.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


def wordnet10k(dtype=np.float32) -> np.ndarray:
    """The embeddings, shape (10000, 384).

    Parameters
    ----------
    dtype : numpy dtype, default float32
        Returned dtype (the file stores float16).

    Returns
    -------
    numpy.ndarray
    """
    return np.load(DATA_DIR / "wordnet10k_minilm384_f16.npy").astype(dtype)


def wordnet10k_texts() -> list[str]:
    """The 10,000 texts, ``texts[i]`` belonging to row ``i`` of :func:`wordnet10k`.

    Returns
    -------
    list of str
        ``"lemma1, lemma2 (pos): gloss"`` per row.
    """
    with gzip.open(DATA_DIR / "wordnet10k_texts.tsv.gz", "rt", encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 3)[3] for line in f]
