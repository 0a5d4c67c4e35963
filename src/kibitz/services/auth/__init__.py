"""The auth service: credentials, refresh tokens and signing keys."""
