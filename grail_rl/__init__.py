"""grail-rl: train language models with GRPO to simulate how people choose what to watch next.

The package is layered so that listing plugins and validating recipes never imports torch, trl or
transformers: only :mod:`grail_rl.training` (and modules below it) do.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("grail-rl")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
