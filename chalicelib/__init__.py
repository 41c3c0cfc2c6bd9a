"""Interaction Management API: the code behind app.py."""
