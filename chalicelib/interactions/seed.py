"""Realistic demo interactions, inserted in bulk with COPY-like batches and a progress bar."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert

from chalicelib.models import INTERACTION_TYPES, Interaction

LEADS = ["John Smith", "Maria Garcia", "Wei Chen", "Aisha Khan", "Lars Nilsson", "Chloé Dubois",
         "Kenji Tanaka", "Olusegun Adeyemi", "Priya Patel", "Sofia Rossi"]
ZONES = ["America/New_York", "Europe/London", "Europe/Paris", "Asia/Tokyo", "America/Los_Angeles",
         "Australia/Sydney", "Asia/Kolkata"]
LOCATIONS = ["Conference Room A", "Conference Room B", "Client HQ", "Zoom", "Teams", "Cafeteria",
             None, "Berlin office", "Remote"]
SUBJECTS = ["Quarterly review", "Pricing negotiation", "Onboarding", "Renewal", "Escalation",
            "Product demo", "Roadmap", "Budget planning", "Kick-off", "Retrospective"]


def _row(rng: random.Random, site_id: int, user_id: int, now: datetime) -> dict:
    start = now - timedelta(minutes=rng.randrange(0, 60 * 24 * 730))
    kind = rng.choice(INTERACTION_TYPES)
    subject = rng.choice(SUBJECTS)
    lead = rng.choice(LEADS)
    return {
        "site_id": site_id, "title": f"{subject} with {lead.split()[0]}", "type": kind,
        "lead": lead, "start_datetime": start, "timezone": rng.choice(ZONES),
        "end_datetime": start + timedelta(minutes=rng.choice([15, 30, 45, 60, 90])) if rng.random() < 0.8 else None,
        "location": rng.choice(LOCATIONS),
        "description": f"{kind} about {subject.lower()} for {lead}.",
        "notes": rng.choice([None, "Follow up next week", "Send the deck", "Waiting on legal"]),
        "created_by": user_id, "created_at": start - timedelta(days=1), "version": 1,
    }


def bulk_create(*, site_ids: list[int], user_ids: list[int], count: int, seed: int = 7,
                batch: int = 5000) -> int:
    from tqdm import tqdm

    from chalicelib.db import session_scope

    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    done = 0
    with tqdm(total=count, unit="rows", desc="interactions") as bar:
        while done < count:
            size = min(batch, count - done)
            rows = [_row(rng, rng.choice(site_ids), rng.choice(user_ids), now) for _ in range(size)]
            with session_scope() as session:
                session.execute(insert(Interaction), rows)
            done += size
            bar.update(size)
    return done
