"""A state dict of the PyTorch reference saved with safetensors.torch.save_file
(written by scripts/make-reference-fixture) loads and encodes like the reference."""
import json
import os
import struct

import numpy as np
import pytest

import compressae

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "Tests", "Fixtures", "reference")


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    start = 8 + length
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start + begin:start + end], dtype=np.float32).reshape(info["shape"])
    return out


def test_reference_state_dict_loads_and_encodes_like_the_reference():
    path = os.path.join(FIXTURES, "state_dict.safetensors")
    with pytest.raises(ValueError, match="pass k"):
        compressae.CompresSAE.load(path)
    model = compressae.CompresSAE.load(path, k=4)
    weights = read_safetensors(path)
    np.testing.assert_array_equal(model.encoder_w, weights["encoder_w"])
    np.testing.assert_array_equal(model.decoder_w, weights["decoder_w"])
    ref = read_safetensors(os.path.join(FIXTURES, "reference_outputs.safetensors"))
    codes = model.encode(ref["x"])
    np.testing.assert_allclose(codes.to_csr().toarray(), ref["codes"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.decode(codes), ref["recon"], rtol=1e-5, atol=1e-6)
