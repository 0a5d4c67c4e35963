"""A chat as a download (`GET /chat/chats/{id}/export`): Markdown to read, JSON to keep."""
