"""A chat as a tree of messages: branches, siblings, regenerating and editing."""
