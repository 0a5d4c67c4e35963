"""Chat titles: plain text, never Markdown syntax taken from the first message."""
