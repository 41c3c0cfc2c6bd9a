"""The scheduled function: every few minutes, invitations' messages that could not be sent are tried
again, each with a new token, until they go or their invitation ends (chalicelib/sites/invitations.py).
Deployed it is a Lambda of its own (a CloudWatch Events schedule), with the API's code and settings."""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint

from chalicelib.db import session_scope
from chalicelib.sites import invitations

bp = Blueprint(__name__)

RETRY_EVERY = "rate(5 minutes)"


@bp.schedule(RETRY_EVERY, name="retry_invitations", description="Send invitations' queued messages again")
def retry_invitations(event: Any) -> dict[str, int]:
    with session_scope(transaction=False) as session:
        done = invitations.retry_queued(session)
    print(json.dumps({"event": "invitations_retried", **done}), flush=True)  # its log line (no token)
    return done
