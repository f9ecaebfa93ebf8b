"""The built-in plugins. Each module here is published as an entry point of the ``grail_rl`` group in
``pyproject.toml`` and registers through the same hooks a third-party plugin uses."""
