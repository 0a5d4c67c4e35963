"""Chat: conversations with agents, persisted history and live token streams."""
