"""A fake LLM provider that speaks the real OpenAI and Anthropic wire protocols (tests, benchmarks)."""
