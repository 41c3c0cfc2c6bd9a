"""Sites: the tenants, and the caller's memberships of them."""
