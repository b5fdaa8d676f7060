import numpy as np
import pytest

from helpers import WORDNET, load_golden


@pytest.fixture(scope="session", params=["small", "medium"])
def golden(request):
    """(name, tensors, settings) of one golden case from the PyTorch reference."""
    tensors, settings = load_golden(request.param)
    return request.param, tensors, settings


@pytest.fixture(scope="session")
def wordnet():
    """The first 2000 rows of the shipped WordNet embeddings, float32 [2000, 384]."""
    return np.load(WORDNET)[:2000].astype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
