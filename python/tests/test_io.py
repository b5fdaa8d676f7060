"""Model files: round trips, the reference's state dict, corrupt files, atomic saves."""

import json
import os
import struct

import numpy as np
import pytest

import compressae
from helpers import random_rows, fit_ref
from st_numpy import encode_safetensors, read_safetensors, write_safetensors


@pytest.fixture
def model():
    with compressae.CompresSAE(24, latent_dim=160, k=5, seed=9) as m:
        yield m


@pytest.fixture
def weights(model):
    return {"encoder_w": model.encoder_w, "encoder_b": model.encoder_b,
            "decoder_w": model.decoder_w}


def test_save_load_roundtrip(tmp_path, model, rng):
    x = random_rows(rng, 50, 24)
    path = tmp_path / "model.safetensors"
    model.save(path)
    with compressae.CompresSAE.load(path) as loaded:
        assert (loaded.input_dim, loaded.latent_dim, loaded.k) == (24, 160, 5)
        a, b = model.encode(x), loaded.encode(x)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(loaded.decoder_w, model.decoder_w)
    with compressae.CompresSAE.load(str(path), k=9) as loaded:  # k overrides the file's
        assert loaded.k == 9


def test_saved_file_is_plain_safetensors(tmp_path, model, weights):
    path = tmp_path / "model.safetensors"
    model.save(path)
    tensors, metadata = read_safetensors(path)
    assert set(tensors) == {"encoder_w", "encoder_b", "decoder_w"}
    for name, value in weights.items():
        np.testing.assert_array_equal(tensors[name], value)
    assert metadata["format"] == "compressae"
    assert metadata["k"] == "5"


def test_save_after_training_and_set_k(tmp_path, model, rng):
    fit_ref(model, random_rows(rng, 64, 24), batch_size=32)
    model.k = 7
    path = tmp_path / "trained.safetensors"
    model.save(path)
    with compressae.CompresSAE.load(path) as loaded:
        assert loaded.k == 7
        np.testing.assert_array_equal(loaded.encoder_w, model.encoder_w)


def test_reference_state_dict_loads_with_k(tmp_path, weights, rng):
    # What `safetensors.torch.save_file(model.state_dict(), path)` writes for
    # the reference: the three tensors, no metadata.
    path = tmp_path / "reference.safetensors"
    write_safetensors(path, weights)
    with compressae.CompresSAE.load(path, k=5) as m:
        for name, value in weights.items():
            np.testing.assert_array_equal(getattr(m, name), value)
    with pytest.raises(compressae.Error, match="k"):
        compressae.CompresSAE.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(compressae.FileError) as info:
        compressae.CompresSAE.load(tmp_path / "absent.safetensors")
    assert "absent.safetensors" in str(info.value)
    assert info.value.status == compressae._ffi.CSAE_ERR_IO


def _corrupt_files(weights):
    good = encode_safetensors(weights, {"format": "compressae", "format_version": "1", "k": "5"})
    (header_len,) = struct.unpack("<Q", good[:8])
    header = json.loads(good[8:8 + header_len])
    wrong_b = dict(weights, encoder_b=weights["encoder_b"][:-1])
    return {
        "empty": b"",
        "short_length": good[:5],
        "truncated_header": good[:8 + header_len // 2],
        "truncated_data": good[: len(good) - 100],
        "huge_header_length": struct.pack("<Q", 2**62) + good[8:],
        "header_longer_than_file": struct.pack("<Q", len(good)) + good[8:],
        "garbage_json": struct.pack("<Q", 16) + b"{not json at al}" + good[8 + header_len:],
        "json_not_object": struct.pack("<Q", 8) + b"[1,2,3] " + good[8 + header_len:],
        "f64": encode_safetensors({k: v.astype(np.float64) for k, v in weights.items()}),
        "wrong_shape": encode_safetensors(wrong_b, {"k": "5"}),
        "missing_tensor": encode_safetensors(
            {k: v for k, v in weights.items() if k != "decoder_w"}, {"k": "5"}),
        "offsets_out_of_range": _with_header(
            good, header_len, header, "encoder_b", [0, 10**9]),
        "bad_k_metadata": encode_safetensors(weights, {"format": "compressae", "k": "many"}),
        "k_too_large": encode_safetensors(weights, {"format": "compressae", "k": "100000"}),
        "nan_weight": encode_safetensors(
            dict(weights, encoder_b=np.full_like(weights["encoder_b"], np.nan)), {"k": "5"}),
    }


def _with_header(good, header_len, header, name, offsets):
    header = json.loads(json.dumps(header))
    header[name]["data_offsets"] = offsets
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + good[8 + header_len:]


@pytest.mark.parametrize("case", [
    "empty", "short_length", "truncated_header", "truncated_data", "huge_header_length",
    "header_longer_than_file", "garbage_json", "json_not_object", "f64", "wrong_shape",
    "missing_tensor", "offsets_out_of_range", "bad_k_metadata", "k_too_large", "nan_weight",
])
def test_corrupt_files_raise(tmp_path, weights, case):
    path = tmp_path / f"{case}.safetensors"
    path.write_bytes(_corrupt_files(weights)[case])
    # k is given, except where the metadata's k is what is being tested.
    k = None if case in ("bad_k_metadata", "k_too_large") else 5
    with pytest.raises(compressae.Error) as info:
        compressae.CompresSAE.load(path, k=k)
    assert str(info.value), "the error has a message"
    assert info.value.status in (compressae._ffi.CSAE_ERR_FORMAT,
                                 compressae._ffi.CSAE_ERR_INVALID_ARGUMENT,
                                 compressae._ffi.CSAE_ERR_IO)


def test_good_file_loads_after_corrupt_ones(tmp_path, weights):
    # The process and the library are still fine after all those errors.
    path = tmp_path / "good.safetensors"
    write_safetensors(path, weights, {"format": "compressae", "format_version": "1", "k": "5"})
    with compressae.CompresSAE.load(path) as m:
        assert m.k == 5


def test_save_into_missing_directory(tmp_path, model):
    with pytest.raises(compressae.FileError):
        model.save(tmp_path / "no" / "such" / "dir" / "model.safetensors")
    assert os.listdir(tmp_path) == []


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, model):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old content")
    model.save(path)
    assert os.listdir(tmp_path) == ["model.safetensors"]
    with compressae.CompresSAE.load(path) as m:
        np.testing.assert_array_equal(m.encoder_w, model.encoder_w)


def test_save_onto_a_directory_fails_cleanly(tmp_path, model):
    target = tmp_path / "a_directory"
    target.mkdir()
    with pytest.raises(compressae.Error):
        model.save(target)
    assert os.listdir(tmp_path) == ["a_directory"]
    assert os.listdir(target) == []


def test_unicode_path(tmp_path, model):
    path = tmp_path / "modèle ü.safetensors"
    model.save(path)
    with compressae.CompresSAE.load(path) as m:
        assert m.k == 5


def test_pickle_roundtrip(model, rng):
    import pickle
    x = random_rows(rng, 10, 24)
    clone = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(clone.encode(x).indices, model.encode(x).indices)
    assert clone.k == model.k


def _run_python(code, timeout):
    """Runs `code` in a fresh interpreter with this one's environment (so it
    finds the same library); returns the CompletedProcess."""
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def test_loading_a_fifo_or_device_is_refused_without_blocking(tmp_path):
    # Issue 12, case 14: open() of a FIFO waits for a writer; the loaders
    # must refuse it (and devices, directories) without opening it.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code = f"""
import compressae
for path in [{str(fifo)!r}, {str(tmp_path)!r}, "/dev/zero"]:
    try:
        compressae.CompresSAE.load(path, k=1)
    except compressae.FileError as e:
        assert "not a regular file" in str(e), e
    else:
        raise SystemExit("loaded " + path)
print("ok")
"""
    result = _run_python(code, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_kill_during_save_leaves_a_loadable_file_and_one_reused_temp(tmp_path):
    # Issue 12, case 13: a writer killed at any point leaves the old or the
    # new file; its temporary file is reused and renamed away by the next save.
    import random
    import signal
    import subprocess
    import sys
    import time
    path = tmp_path / "model.safetensors"
    with compressae.CompresSAE(64, latent_dim=8192, k=4, seed=1) as m:
        m.save(path)
    code = f"""
import sys, compressae
m = compressae.CompresSAE(64, latent_dim=8192, k=4, seed=2)
print("ready", flush=True)
while True:
    m.save({str(path)!r})
"""
    rounds = int(os.environ.get("COMPRESSAE_KILL_ROUNDS", "8"))
    rand = random.Random(12)
    for _ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=dict(os.environ))
        assert child.stdout.readline().strip() == b"ready"
        time.sleep(rand.uniform(0, 0.15))
        child.send_signal(signal.SIGKILL)
        child.wait()
        child.stdout.close()
        with compressae.CompresSAE.load(path) as loaded:
            assert loaded.latent_dim == 8192
        leftovers = sorted(os.listdir(tmp_path))
        assert leftovers in (["model.safetensors"], [".model.safetensors.tmp", "model.safetensors"]), leftovers
    with compressae.CompresSAE(64, latent_dim=8192, k=4, seed=3) as m:
        m.save(path)
    assert os.listdir(tmp_path) == ["model.safetensors"]


def test_damaged_index_file_is_refused(tmp_path, model, rng):
    # Index files carry a checksum of their payload: one flipped bit is damage.
    index = compressae.SparseIndex(model, mode="sparse")
    index.add(random_rows(rng, 40, 24))
    path = tmp_path / "index.safetensors"
    index.save(path)
    data = bytearray(path.read_bytes())
    data[-7] ^= 0x04
    path.write_bytes(bytes(data))
    with pytest.raises(compressae.FormatError, match="checksum"):
        compressae.SparseIndex.load(path, model)
