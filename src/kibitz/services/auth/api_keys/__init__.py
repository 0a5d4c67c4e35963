"""Personal API keys: a user's long-lived credential for scripts and tools, exchanged by the
gateway for a short-lived access token on each use."""
