"""kibitz: a multi-tenant AI agent chat platform."""

__version__ = "0.1.0"
