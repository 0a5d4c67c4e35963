"""The users service: profiles and preferences."""
