"""A fake LLM provider speaking the real OpenAI and Anthropic wire protocols (tests, benchmarks)."""
