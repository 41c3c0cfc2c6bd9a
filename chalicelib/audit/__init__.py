"""The audit trail: one append-only table of events, each written by the statement that makes the
change it records (`events`), and its reads (`routes`, `service`). Every domain records its changes
through `chalicelib.audit.events`."""
