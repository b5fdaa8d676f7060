"""Build script: compiles the Swift library and ships it inside the package.

``pip install ./python`` (from the repository root) runs
``swift build -c release --product CompresSAE`` on the Swift package and
copies ``libCompresSAE.so`` into ``compressae/lib/``. The Swift package is
the repository root (the parent of this directory) in a checkout, or the
``swift/`` directory of an sdist, which carries the Swift sources for that
purpose.

The Swift standard library is linked statically into the shared library
(``-Xswiftc -static-stdlib``): the installed package then needs no Swift
toolchain or runtime at load time, and the runtime's symbols stay private,
so it cannot clash with another Swift runtime in the same process. SwiftPM's
``--static-swift-stdlib`` flag does not do this for dynamic library
products on Linux (it still links libswiftCore.so dynamically).

That build uses its own scratch directory (``.build/python-static``) so that
its flags do not invalidate the default ``.build`` of ``swift build``.

The wheel is tagged ``py3-none-<platform>``: the package is pure Python
(ctypes) around one shared library, so one wheel serves every Python 3.
The version is the library's ``CSAE_VERSION``
(``Sources/CCompresSAE/include/compressae_types.h``), the one place it is
written.

Environment variables:

- ``SWIFT``: the swift executable (default: ``swift`` on PATH, then
  ``/opt/swift/usr/bin/swift``);
- ``COMPRESSAE_SWIFT_BUILD_ARGS``: extra arguments for ``swift build``;
- ``COMPRESSAE_DYNAMIC_SWIFT_STDLIB=1``: link the Swift runtime dynamically
  (the library then needs the toolchain's runtime at load time);
- ``COMPRESSAE_PREBUILT_LIBRARY``: ship this library file instead of
  building one (``scripts/build-wheel`` links its own for old glibc);
- ``COMPRESSAE_WHEEL_PLATFORM``: the wheel's platform tag (e.g.
  ``manylinux_2_17_x86_64``; default: the build machine's, ``linux_x86_64``);
- ``COMPRESSAE_KEEP_DEBUG_INFO=1``: do not strip the package's copy of the
  library (stripped with ``strip --strip-unneeded`` when ``strip`` exists);
- ``COMPRESSAE_WITHOUT_DATA=1``: leave the demo dataset (8 MB) out of the
  package; ``compressae.datasets`` then reads it from
  ``COMPRESSAE_DATA_DIR``.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LIBRARY = "libCompresSAE.dylib" if sys.platform == "darwin" else "libCompresSAE.so"
VERSION_HEADER = Path("Sources", "CCompresSAE", "include", "compressae_types.h")

# What an sdist carries of the Swift package (under swift/): everything
# Package.swift names, so that `swift build` accepts the manifest.
SWIFT_PACKAGE_FILES = ["Package.swift", "LICENSE", "README.md", "include", "Sources",
                       "examples/swift", "Tests/CompresSAETests"]


def swift_package() -> Path:
    """The directory holding Package.swift: an sdist's swift/, else the checkout."""
    for candidate in (HERE / "swift", REPO):
        if (candidate / "Package.swift").is_file():
            return candidate
    sys.exit(
        f"error: no Package.swift in {HERE / 'swift'} or {REPO}: the Python package "
        "is built from a checkout of the compressae repository (pip install ./python) "
        "or from its sdist"
    )


def read_version() -> str:
    header = swift_package() / VERSION_HEADER
    match = re.search(r'^#define CSAE_VERSION "([^"]+)"', header.read_text(), re.M)
    if not match:
        sys.exit(f"error: {header} does not define CSAE_VERSION")
    return match.group(1)


def find_swift() -> str:
    candidates = [os.environ.get("SWIFT"), shutil.which("swift"), "/opt/swift/usr/bin/swift"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    sys.exit(
        "error: building compressae needs the Swift toolchain (6.3 or newer): "
        "`swift` is not on PATH and /opt/swift/usr/bin/swift does not exist; "
        "install it or set SWIFT=/path/to/swift"
    )


def build_swift_library() -> Path:
    """Run ``swift build`` on the Swift package; return the built library."""
    prebuilt = os.environ.get("COMPRESSAE_PREBUILT_LIBRARY")
    if prebuilt:
        if not Path(prebuilt).is_file():
            sys.exit(f"error: COMPRESSAE_PREBUILT_LIBRARY={prebuilt!r} is not a file")
        return Path(prebuilt)
    package = swift_package()
    swift = find_swift()
    static = os.environ.get("COMPRESSAE_DYNAMIC_SWIFT_STDLIB", "") in ("", "0")
    scratch = package / ".build" / ("python-static" if static else "python-dynamic")
    args = [
        swift, "build", "-c", "release", "--product", "CompresSAE",
        "--package-path", str(package), "--scratch-path", str(scratch),
    ]
    if static and sys.platform.startswith("linux"):
        args += ["-Xswiftc", "-static-stdlib"]
    args += shlex.split(os.environ.get("COMPRESSAE_SWIFT_BUILD_ARGS", ""))
    print("compressae: " + " ".join(shlex.quote(a) for a in args), flush=True)
    if subprocess.run(args, cwd=package).returncode != 0:
        # The compiler's own messages are above; a Python traceback would
        # only bury them.
        sys.exit("error: `swift build` failed (see its messages above)")
    bin_path = subprocess.run(
        args + ["--show-bin-path"], check=True, cwd=package, capture_output=True, text=True
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
            if os.environ.get("COMPRESSAE_WITHOUT_DATA", "") not in ("", "0"):
                data = Path(self.build_lib) / "compressae" / "data"
                for path in list(data.glob("*.npy")) + list(data.glob("*.tsv.gz")):
                    path.unlink()
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target / LIBRARY)
        strip = shutil.which("strip")
        if strip and os.environ.get("COMPRESSAE_KEEP_DEBUG_INFO", "") in ("", "0"):
            # The debug info is 40% of the file and of no use to a package
            # user; the build tree keeps it.
            subprocess.run([strip, "--strip-unneeded", str(target / LIBRARY)], check=True)


class BinaryDistribution(Distribution):
    """Marks the package as platform specific (it contains a shared library),
    so that it installs into platlib and its wheel names a platform."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """One ``py3-none-<platform>`` wheel: ctypes code plus a shared library
    that does not depend on the Python version or ABI."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", os.environ.get("COMPRESSAE_WHEEL_PLATFORM", platform)


class SdistWithSwift(sdist):
    """sdist that also carries the Swift package (under swift/), so that the
    sdist builds with a Swift toolchain and nothing else."""

    def make_release_tree(self, base_dir, files):
        super().make_release_tree(base_dir, files)
        package = swift_package()
        target = Path(base_dir) / "swift"
        for name in SWIFT_PACKAGE_FILES:
            source = package / name
            if source.is_dir():
                shutil.copytree(source, target / name, ignore=shutil.ignore_patterns(".*"))
            elif source.is_file():
                (target / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target / name)
            else:
                sys.exit(f"error: {source} is missing; the sdist needs it")


setup(
    version=read_version(),
    cmdclass={"build_py": BuildPyWithSwift, "bdist_wheel": PlatformWheel, "sdist": SdistWithSwift},
    distclass=BinaryDistribution,
)
