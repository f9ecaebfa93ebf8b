"""``python -m grail_rl``: the same command line as the ``grail-rl`` console script."""

from grail_rl.cli.main import main

if __name__ == "__main__":
    main()
