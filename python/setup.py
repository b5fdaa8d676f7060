"""Build script: compiles the Swift library and ships it inside the package.

``pip install ./python`` (from the repository root) runs
``swift build -c release --product CompresSAE`` in the repository root (the
parent of this directory) and copies ``libCompresSAE.so`` into
``compressae/lib/``.

The Swift standard library is linked statically into the shared library
(``-Xswiftc -static-stdlib``): the installed package then needs no Swift
toolchain or runtime at load time, and the runtime's symbols stay private,
so it cannot clash with another Swift runtime in the same process. SwiftPM's
``--static-swift-stdlib`` flag does not do this for dynamic library
products on Linux (it still links libswiftCore.so dynamically).

That build uses its own scratch directory (``.build/python-static``) so that
its flags do not invalidate the default ``.build`` of ``swift build``.

Environment variables:

- ``SWIFT``: the swift executable (default: ``swift`` on PATH, then
  ``/opt/swift/usr/bin/swift``);
- ``COMPRESSAE_SWIFT_BUILD_ARGS``: extra arguments for ``swift build``;
- ``COMPRESSAE_DYNAMIC_SWIFT_STDLIB=1``: link the Swift runtime dynamically
  (the library then needs the toolchain's runtime at load time).
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIBRARY = "libCompresSAE.dylib" if sys.platform == "darwin" else "libCompresSAE.so"


def find_swift() -> str:
    candidates = [os.environ.get("SWIFT"), shutil.which("swift"), "/opt/swift/usr/bin/swift"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    sys.exit(
        "error: building compressae needs the Swift toolchain (6.0 or newer): "
        "`swift` is not on PATH and /opt/swift/usr/bin/swift does not exist; "
        "install it or set SWIFT=/path/to/swift"
    )


def build_swift_library() -> Path:
    """Run ``swift build`` in the repository root; return the built library."""
    if not (REPO / "Package.swift").is_file():
        sys.exit(
            f"error: {REPO / 'Package.swift'} not found: the Python package is built "
            "from a checkout of the compressae repository (pip install ./python)"
        )
    swift = find_swift()
    static = os.environ.get("COMPRESSAE_DYNAMIC_SWIFT_STDLIB", "") in ("", "0")
    scratch = REPO / ".build" / ("python-static" if static else "python-dynamic")
    args = [
        swift, "build", "-c", "release", "--product", "CompresSAE",
        "--package-path", str(REPO), "--scratch-path", str(scratch),
    ]
    if static and sys.platform.startswith("linux"):
        args += ["-Xswiftc", "-static-stdlib"]
    args += shlex.split(os.environ.get("COMPRESSAE_SWIFT_BUILD_ARGS", ""))
    print("compressae: " + " ".join(shlex.quote(a) for a in args), flush=True)
    if subprocess.run(args, cwd=REPO).returncode != 0:
        # The compiler's own messages are above; a Python traceback would
        # only bury them.
        sys.exit("error: `swift build` failed (see its messages above)")
    bin_path = subprocess.run(
        args + ["--show-bin-path"], check=True, cwd=REPO, capture_output=True, text=True
    ).stdout.strip().splitlines()[-1]
    library = Path(bin_path) / LIBRARY
    if not library.is_file():
        sys.exit(f"error: swift build succeeded but {library} does not exist")
    return library


class BuildPyWithSwift(build_py):
    """build_py that also builds the Swift library and copies it in."""

    def run(self):
        super().run()
        library = build_swift_library()
        if getattr(self, "editable_mode", False):
            # Editable installs import from the source tree.
            target = HERE / "compressae" / "lib"
        else:
            target = Path(self.build_lib) / "compressae" / "lib"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target / LIBRARY)


class BinaryDistribution(Distribution):
    """Marks the wheel as platform specific (it contains a shared library)."""

    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithSwift}, distclass=BinaryDistribution)
