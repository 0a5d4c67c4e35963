"""From an upload to searchable chunks: parsing, chunking, and the indexing jobs."""
