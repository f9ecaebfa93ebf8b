"""The built-in plugins, registered by import.

Each module listed in :data:`BUILTIN_PLUGINS` implements the same hooks a third-party plugin does and goes
through the same ``register`` path (validation, duplicate checks, provenance), but is found by import rather
than through an entry point: a source tree without install metadata, or a built-in added since the last
install, has its plugins all the same (as in datasette and llm). Third-party plugins still come from the
``grail_rl`` entry-point group.
"""

# plugin name -> module; the name is what `grail-rl plugins` shows and GRAIL_RL_BLOCK_PLUGINS accepts.
BUILTIN_PLUGINS: dict[str, str] = {
    "builtin_rewards": "grail_rl.builtin.rewards",
    "builtin_sections": "grail_rl.builtin.sections",
    "builtin_discriminators": "grail_rl.builtin.discriminators",
}
