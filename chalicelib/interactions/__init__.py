"""Interactions: the Finder's records, always scoped to one site."""
