"""Domain-neutral pieces every domain builds on: pagination, timestamps, path ids, text rules and
the shapes the OpenAPI document describes. Nothing here knows about interactions, sites or users."""
