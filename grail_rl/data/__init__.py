"""Viewer data: the cleaned step-row schema, streaming loaders, the drop report, the leak audit, the
importer for rendered-prompt files and the synthetic viewer generator.

Nothing here imports torch, trl or transformers; ``datasets`` is imported only inside the functions that
need it. The training code calls :func:`grail_rl.data.dataset.build_split`.
"""
