"""The small real dataset shipped with the package.

``wordnet10k``: 10,000 WordNet 3.0 synset texts embedded with the
sentence-transformers model all-MiniLM-L6-v2 (384-d, unit norm), stored as
float16. See ``compressae/data/README.md`` for how it was made and its
licence.

Where the files are read from: the directory in the environment variable
``COMPRESSAE_DATA_DIR`` when it is set, else ``compressae/data/`` of the
installed package. ``pip install ./python`` from the repository puts them
there; the published wheel leaves them out (they are 8 MB, three times the
rest of the wheel), so with it point ``COMPRESSAE_DATA_DIR`` at a copy of the
repository's ``python/compressae/data``.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "data"


def _data_file(name: str) -> Path:
    env = os.environ.get("COMPRESSAE_DATA_DIR")
    directory = Path(env) if env else DATA_DIR
    path = directory / name
    if path.is_file():
        return path
    where = f"COMPRESSAE_DATA_DIR={env!r}" if env else f"the package ({DATA_DIR})"
    raise FileNotFoundError(
        f"the demo dataset file {name} is not in {where}. The published wheel "
        "leaves the dataset out; set COMPRESSAE_DATA_DIR to a directory holding "
        "it (python/compressae/data in the compressae repository), or install "
        "the package from the repository (pip install ./python)"
    )


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
    return np.load(_data_file("wordnet10k_minilm384_f16.npy")).astype(dtype)


def wordnet10k_texts() -> list[str]:
    """The 10,000 texts, ``texts[i]`` belonging to row ``i`` of :func:`wordnet10k`.

    Returns
    -------
    list of str
        ``"lemma1, lemma2 (pos): gloss"`` per row.
    """
    with gzip.open(_data_file("wordnet10k_texts.tsv.gz"), "rt", encoding="utf-8") as f:
        return [line.rstrip("\n").split("\t", 3)[3] for line in f]
