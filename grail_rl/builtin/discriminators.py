"""Built-in discriminator plugins, registered through the same hook a third-party discriminator implements.

The implementations live in :mod:`grail_rl.grail` (``ngram``: hashed word n-grams, no download; ``encoder``:
a classifier head on a pretrained encoder, MiniLM by default). Registering them imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable

from grail_rl.grail.encoder import EncoderDiscriminator
from grail_rl.grail.ngram import NgramDiscriminator
from grail_rl.plugins.hookspecs import hookimpl

BUILTIN_DISCRIMINATORS: tuple[type, ...] = (NgramDiscriminator, EncoderDiscriminator)


@hookimpl
def register_discriminators(register: Callable[[type], None]) -> None:
    for cls in BUILTIN_DISCRIMINATORS:
        register(cls)
