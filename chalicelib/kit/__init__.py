"""Domain-neutral pieces every domain builds on: pagination, timestamps, path ids, text rules (the
username rule and its case fold among them) and the shapes the OpenAPI document describes. Nothing
here knows about interactions, sites or users."""
