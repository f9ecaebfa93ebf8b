"""Evaluation: accuracy with Wilson intervals, breakdowns and baselines; generation lives in ``generate``.

Only :mod:`grail_rl.evaluation.generate` imports torch/transformers.
"""
