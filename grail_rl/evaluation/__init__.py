"""Evaluation: the runner ``train``, ``evaluate`` and ``demo`` share, its metrics, baselines and reports.

Only the generators (:mod:`grail_rl.evaluation.generation`), ``choice_logprob`` and the runner's model loading
import torch/transformers, and only inside functions; metrics, reports and re-scoring stay torch-free.
"""
