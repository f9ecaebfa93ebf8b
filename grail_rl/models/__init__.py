"""Models: the offline tiny model builder and the loader for a recipe's policy model.

Only code that trains or evaluates a model imports this package's modules (they import transformers).
"""
