"""Agents: per-user AI agents (provider, model, instructions, temperature) and the LLM calls."""
