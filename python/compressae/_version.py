"""Version of the Python package (kept equal to the library's csae_version())."""

__version__ = "0.1.0"
