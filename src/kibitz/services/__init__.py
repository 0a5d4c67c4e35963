"""One package per domain; services never import each other."""
