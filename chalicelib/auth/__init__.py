"""Authentication: tokens, passwords, sessions, limits, the authorizer and the auth endpoints."""
