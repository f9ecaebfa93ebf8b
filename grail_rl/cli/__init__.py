"""The ``grail-rl`` command line. Subcommands load lazily so listing and validation stay fast."""
