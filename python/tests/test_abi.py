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
    declared = set(re.findall(r"\b(csae_\w+)\s*\(", header.split("/* ---- functions", 1)[1]))
    assert declared == set(_abi.FUNCTIONS)
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


def test_abi_version_and_status_names():
    assert _ffi.csae_abi_version() == _abi.CSAE_ABI_VERSION
    assert _ffi.STATUS_NAMES[_abi.CSAE_ERR_OUT_OF_MEMORY] == "CSAE_ERR_OUT_OF_MEMORY"


def test_vector_isa_and_blas_name_are_reported():
    assert compressae.vector_isa() in ("avx2+fma", "baseline")
    assert isinstance(compressae.blas_name(), str) and compressae.blas_name()
