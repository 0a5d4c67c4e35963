"""The keys access tokens are signed with: which one signs, which verify, and rotation."""
