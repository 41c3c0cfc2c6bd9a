"""Deployment tooling: stage checks, packaging with Gateway Responses, the local smoke run."""
