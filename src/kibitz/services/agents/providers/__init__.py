"""LLM provider adapters behind one interface: text deltas, then usage and finish reason."""
