"""Single sign-on: OpenID Connect and GitHub sign-in, and tenants' own identity providers."""
