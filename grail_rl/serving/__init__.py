"""Talking to OpenAI-compatible servers (vLLM, transformers serve, hosted APIs): one client for every use."""
