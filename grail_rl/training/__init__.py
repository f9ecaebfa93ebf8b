"""Training: a recipe becomes a ``trl.GRPOConfig`` and ``GRPOTrainer``, with checkpoints, logging and hub.

Only the modules that build or run the trainer import torch/trl/transformers, and only inside functions,
so ``grail_rl.training.config`` can be imported by fast code paths.
"""
