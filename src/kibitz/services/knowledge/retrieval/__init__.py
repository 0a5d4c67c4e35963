"""Embedding models and the vector store behind search."""
