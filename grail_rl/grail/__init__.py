"""GRAIL: the GAIL-style discriminator reward.

- :mod:`grail_rl.grail.settings`: the keys every ``discriminator:`` block has (how it is trained online);
- :mod:`grail_rl.grail.texts`: the text a discriminator reads for one (prompt, choice), choice first;
- :mod:`grail_rl.grail.ngram` and :mod:`grail_rl.grail.encoder`: the two built-in discriminators;
- :mod:`grail_rl.grail.runtime`: the online training around a discriminator plugin (replay buffer, minibatches,
  warmup, ranks kept in step, health metrics, checkpointed state);
- :mod:`grail_rl.grail.reward`: the ``gail`` reward.

Only the discriminators and the runtime import torch, and only when used.
"""

# The plugin package first: its kinds read grail.settings, which reads the plugin base classes. Entered from
# here (``import grail_rl.builtin.rewards`` reaches grail.reward before any plugin module), the cycle would
# meet a half-made grail.settings.
import grail_rl.plugins  # noqa: E402, F401
