"""Prompts: the built-in sections of the user prompt and the builder that turns rows into chat messages.

Nothing here imports torch, trl or transformers.
"""

from grail_rl.prompts.builder import PromptBuilder, default_system_prompt

__all__ = ["PromptBuilder", "default_system_prompt"]
