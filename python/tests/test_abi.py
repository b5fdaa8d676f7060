"""The Python bindings cover the C ABI exactly as include/compressae.h states it."""

import ctypes
import re
from pathlib import Path

import compressae
from compressae import _abi, _ffi

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(compressae.__file__).resolve().parent


def test_every_header_function_is_bound_with_its_types():
    header = (ROOT / "include" / "compressae.h").read_text()
    functions, helpers = header.split("/* ---- functions", 1)[1].split("/* ---- inline helpers", 1)
    functions = re.sub(r"^\s*///.*$", "", functions, flags=re.M)  # the doc comments
    declared = set(re.findall(r"\b(csae_\w+)\s*\(", functions))
    assert declared == set(_abi.FUNCTIONS)
    # The header's static inline helpers have Python mirrors of the same name in _ffi.
    inline = set(re.findall(r"static inline \w+ (csae_\w+)\(", helpers))
    assert inline == {"csae_train_default_params", "csae_train_reference_params",
                      "csae_encode_default_params", "csae_search_default_params",
                      "csae_row_source_defaults"}
    for name in inline:
        assert callable(getattr(_ffi, name)), name
    for name, (restype, params) in _abi.FUNCTIONS.items():
        fn = getattr(_ffi, name)
        assert fn.restype is restype, name
        assert list(fn.argtypes or []) == [t for _, t in params], name


def test_every_function_is_used_by_the_package_or_its_tests():
    """A function nothing calls is a binding nobody has tried."""
    sources = "\n".join(p.read_text() for p in PACKAGE.glob("*.py") if p.name not in ("_abi.py",))
    sources += "\n".join(p.read_text() for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_abi.py")
    unused = [name for name in _abi.FUNCTIONS if not re.search(rf"\b{name}\b", sources)]
    assert not unused, f"C functions with no Python caller: {unused}"


def test_struct_layouts_match_the_c_compiler():
    """Field offsets of the ctypes structs against offsetof() from a C compiler."""
    import shutil
    import subprocess
    import tempfile

    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        import pytest
        pytest.skip("no C compiler")
    structs = [obj for obj in vars(_abi).values()
               if isinstance(obj, type) and issubclass(obj, ctypes.Structure) and obj is not ctypes.Structure]
    assert structs
    lines = ['#include <stdio.h>', '#include <stddef.h>', '#include "compressae.h"', "int main(void) {"]
    for s in structs:
        lines.append(f'printf("{s.__name__} %zu\\n", sizeof({s.__name__}));')
        for field, _ in s._fields_:
            lines.append(f'printf("{s.__name__}.{field} %zu\\n", offsetof({s.__name__}, {field}));')
    lines += ["return 0;", "}"]
    with tempfile.TemporaryDirectory() as tmp:
        src, exe = Path(tmp) / "layout.c", Path(tmp) / "layout"
        src.write_text("\n".join(lines))
        subprocess.run([cc, "-std=c11", f"-I{ROOT / 'include'}", str(src), "-o", str(exe)], check=True)
        out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    expected = {}
    for s in structs:
        expected[s.__name__] = ctypes.sizeof(s)
        for field, _ in s._fields_:
            expected[f"{s.__name__}.{field}"] = getattr(s, field).offset
    measured = {key: int(value) for key, value in (line.split() for line in out.splitlines())}
    assert measured == expected


def test_every_function_has_a_test():
    """Each function of the header is called by name in a Python test or a
    Swift test (Tests/), besides its binding."""
    sources = [p for p in Path(__file__).parent.glob("test_*.py") if p.name != "test_abi.py"]
    sources += list((ROOT / "Tests").rglob("*.swift")) + list((ROOT / "Tests").rglob("*.c"))
    sources.append(Path(__file__))
    text = "\n".join(p.read_text() for p in sources if p.is_file())
    untested = [name for name in _abi.FUNCTIONS if not re.search(rf"\b{name}\(", text)]
    assert not untested, f"C functions no test calls: {untested}"


def test_abi_version_and_status_names():
    assert _ffi.csae_abi_version() == _abi.CSAE_ABI_VERSION
    assert _ffi.STATUS_NAMES[_abi.CSAE_ERR_OUT_OF_MEMORY] == "CSAE_ERR_OUT_OF_MEMORY"
    assert _ffi.csae_version().decode() == compressae.__version__
    assert _ffi.csae_get_num_threads() == compressae.get_num_threads() >= 1
    assert _ffi.csae_blas_name().decode() == compressae.blas_name()


def test_vector_isa_and_blas_name_are_reported():
    assert compressae.vector_isa() in ("avx2+fma", "baseline")
    assert isinstance(compressae.blas_name(), str) and compressae.blas_name()


PARAMS_STRUCTS = ("csae_train_params", "csae_encode_params", "csae_search_params")


def test_params_structs_grow_safely():
    """Each params struct starts with uint32 struct_size and int32 num_threads,
    its *_default_params() sets struct_size to its size, and it has no
    padding (every field starts where the previous one ends, the size is a
    multiple of 8): a field appended later never falls into bytes an older
    caller left unset, so the library can read a caller's first struct_size
    bytes (docs/c-api.md, "Params structs")."""
    defaults = {"csae_train_params": _ffi.csae_train_default_params,
                "csae_encode_params": _ffi.csae_encode_default_params,
                "csae_search_params": _ffi.csae_search_default_params}
    assert set(defaults) == set(PARAMS_STRUCTS)
    for name in PARAMS_STRUCTS:
        struct = getattr(_abi, name)
        assert struct._fields_[:2] == [("struct_size", ctypes.c_uint32), ("num_threads", ctypes.c_int32)], name
        end = 0
        for field, ctype in struct._fields_:
            assert getattr(struct, field).offset == end, f"{name}.{field}: padding before it"
            end += ctypes.sizeof(ctype)
        assert end == ctypes.sizeof(struct) and end % 8 == 0, f"{name}: {end} bytes, size {ctypes.sizeof(struct)}"
        assert defaults[name]().struct_size == ctypes.sizeof(struct), name


def test_fit_takes_every_training_setting_by_its_c_name():
    """Adding a field to csae_train_params reaches fit(**settings) through the
    generated _abi.py; this test fails until fit also lists it as a
    keyword (default None) and documents it."""
    import inspect

    fields = [name for name, _ in _abi.csae_train_params._fields_
              if name not in ("struct_size", "progress", "user_data")]
    signature = inspect.signature(compressae.CompresSAE.fit)
    keywords = [n for n, p in signature.parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY]
    missing = [name for name in fields if name not in keywords]
    assert not missing, f"csae_train_params fields that fit does not list: {missing}"
    doc = compressae.CompresSAE.fit.__doc__
    undocumented = [name for name in fields if not re.search(rf"^\s+{name}\b.*:", doc, re.M)
                    and not re.search(rf"^\s+(\w+, )*{name}(, \w+)* :", doc, re.M)]
    assert not undocumented, f"fit settings without a docstring entry: {undocumented}"
