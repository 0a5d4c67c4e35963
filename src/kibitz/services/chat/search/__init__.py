"""Full-text search over the caller's own messages (`GET /chat/search`)."""
