"""Demo data for local runs and benchmarks: sites, users with each role, invitations waiting to be
accepted, and interactions with their history. The seed is an operator's command: everything it
writes is recorded as its audit events (`via: "cli"`); its invitations are sent like any other
(the local run's directory sender, whose messages the local run prints)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from chalicelib.audit import events as audit
from chalicelib.auth.passwords import hash_password
from chalicelib.kit import names
from chalicelib.kit.usernames import same_name
from chalicelib.models import Site, SiteMembership, User

SITE_NAMES = [
    "Marketing",
    "Sales",
    "Support",
    "Engineering",
    "Operations",
    "Finance",
    "Legal",
    "Research",
    "Partnerships",
    "Training",
]
SITE_DESCRIPTIONS = {
    "Marketing": "Campaigns, events and agency meetings",
    "Sales": "Prospects, demos and renewals",
    "Support": "Escalations and customer reviews",
}
# (username, role on the first site, member of every site?)
DEMO_USERS = [
    ("demo", "admin", True),  # several sites: picks one after login
    ("editor", "editor", False),  # one site: logged straight into it
    ("viewer", "viewer", False),
]
# Addresses invited to the first site (by the operator), waiting to be accepted: (address, role).
INVITED = [("newhire@example.com", "viewer"), ("contractor@example.com", "editor")]


def _site_name(index: int) -> str:
    if index < len(SITE_NAMES):
        return SITE_NAMES[index]
    return f"Site {index + 1}"


def seed_accounts(
    session: Session, *, sites: int, password: str, origin: audit.Origin | None = None
) -> tuple[list[int], list[int], list[int], list[str]]:
    """Create the demo sites and users that do not exist yet, grant the new users their roles in
    the sites created here and invite the demo addresses to the first site when it was created
    here; record every change. An account or site that already exists is left exactly as it is
    (password, sessions, active flag, memberships): re-running the seed never resets a password,
    ends a session or reactivates an account. Returns the site ids, the user ids, the new
    invitations' ids (to be sent once committed) and the usernames created."""
    from chalicelib.errors import Conflict
    from chalicelib.sites import invitations
    from chalicelib.sites.members import grant

    origin = origin or audit.by_cli()

    def record(**event: Any) -> None:
        session.execute(audit.record(None, origin=origin, **event))

    site_ids, new_sites = [], set()
    for index in range(max(1, sites)):
        name = _site_name(index)
        site = session.scalars(select(Site).where(Site.name == name)).first()
        if site is None:
            site = Site(
                name=name,
                name_skeleton=names.skeleton(name),
                description=SITE_DESCRIPTIONS.get(name, f"{name} team"),
            )
            session.add(site)
            session.flush()
            record(
                action="site.created",
                target_type="site",
                target_id=site.id,
                site_id=site.id,
                changes=audit.created(
                    {"name": site.name, "description": site.description}, audit.SITE_FIELDS
                ),
            )
            new_sites.add(site.id)
        site_ids.append(site.id)
    password_hash: str | None = None
    user_ids, created = [], []
    for username, role, everywhere in DEMO_USERS:
        user = session.scalars(select(User).where(same_name(User.username, username))).first()
        if user is None:
            password_hash = password_hash or hash_password(password)
            user = _new_account(session, username, password_hash=password_hash, origin=origin)
            created.append(username)
            for site_id in site_ids if everywhere else site_ids[:1]:
                if site_id in new_sites:
                    grant(session, user_id=user.id, site_id=site_id, role=role, origin=origin)
        user_ids.append(user.id)
    invited: list[int] = []
    for email, role in INVITED if site_ids[0] in new_sites else ():
        try:
            made = invitations.create(
                session, site_id=site_ids[0], caller_id=None, origin=origin, email=email, role=role
            )
        except Conflict:
            continue  # a member has the address, or it is invited already
        invited.append(made["id"])
    session.flush()
    return site_ids, user_ids, invited, created


def _new_account(session: Session, username: str, *, password_hash: str, origin: audit.Origin) -> User:
    """The demo account `username`, created and recorded."""
    user = User(username=username, email=f"{username}@example.com", password_hash=password_hash)
    session.add(user)
    session.flush()
    changes = audit.created({"username": user.username, "email": user.email}, audit.ACCOUNT_FIELDS)
    session.execute(audit.account_event(user.id, origin=origin, action="user.created", changes=changes))
    return user


def seed(
    *, sites: int = 3, interactions: int = 300, password: str | None = None, progress: bool = True
) -> str:
    """Seed everything in one transaction and print the credentials of the accounts it created.
    Returns the password (theirs; an account that existed keeps its own).

    Interactions go to the sites where a demo writer may write (`_writers`), spread with
    `seed.site_shares` (the first of them gets 20 %, at least an equal share) and streamed with
    COPY; statistics and the visibility map are refreshed afterwards so the planner and index-only
    counts see the new rows at once.
    """
    import time

    from chalicelib.db import get_engine, session_scope
    from chalicelib.interactions import seed as interaction_seed
    from chalicelib.models import Interaction

    password = password or secrets.token_urlsafe(12)
    started = time.perf_counter()
    origin = audit.by_cli()
    with session_scope() as session:
        site_ids, user_ids, invited, created = seed_accounts(
            session, sites=sites, password=password, origin=origin
        )
        writers = _writers(session, site_ids, user_ids[:2])
        seeded = [site_id for site_id in site_ids if writers.get(site_id)]
        before = int(session.scalar(select(func.coalesce(func.max(Interaction.id), 0))) or 0)
        shares = (
            interaction_seed.bulk_create(
                session, site_ids=seeded, writers=writers, count=interactions, progress=progress
            )
            if seeded
            else []
        )
        events = interaction_seed.record_history(session, origin=origin, after_id=before, progress=progress)
    with session_scope(transaction=False) as session:  # committed: now the messages go
        from chalicelib.sites.invitations import deliver

        delivered = [deliver(session, invitation_id=invitation_id) for invitation_id in invited]
    if interactions and not seeded:
        print(
            "No interactions written: no demo site has a demo editor or admin (existing ones are left alone)"
        )
    elif interactions:
        _vacuum_analyze(get_engine())
        seconds = time.perf_counter() - started
        named = {site_id: _site_name(index) for index, site_id in enumerate(site_ids)}
        # No second rate here: the progress bar's is the rows' (the COPY); this total also counts
        # the accounts' password hash, the events, index builds and VACUUM.
        print(
            f"Seeded {interactions:,} interactions (and {events:,} audit events) in {seconds:.1f} s in all; "
            "per site: "
            + ", ".join(f"{named[site_id]} {n:,}" for site_id, n in zip(seeded, shares, strict=True))
        )
    if created:
        print(f"Demo users created (password for all: {password})")
        for username, role, everywhere in DEMO_USERS:
            if username in created:
                where = "every demo site" if everywhere else _site_name(0)
                print(f"  {username:<8} {role:<7} on {where}")
    kept = [username for username, _, _ in DEMO_USERS if username not in created]
    if kept:
        print("Existing accounts left as they were (password, sessions, sites): " + ", ".join(kept))
    if invited:
        queued = delivered.count("queued")
        print(
            f"Invited to {_site_name(0)} (the operator's invitations; each message carries its accept link"
            + (f", {queued} queued for a retry" if queued else "")
            + "):"
        )
        for email, role in INVITED:
            print(f"  {email:<24} {role}")
    return password


def _writers(session: Session, site_ids: Sequence[int], user_ids: Sequence[int]) -> dict[int, Sequence[int]]:
    """Who writes a site's demo rows: those of `user_ids` (in that order) who may write there now —
    an active account, editor or admin of the active site. A site or account the seed found already
    there without such a role (someone's real `Marketing`, a real `editor`) gets no demo rows."""
    may_write = set(
        session.execute(
            select(SiteMembership.site_id, SiteMembership.user_id)
            .join(User, User.id == SiteMembership.user_id)
            .join(Site, Site.id == SiteMembership.site_id)
            .where(
                SiteMembership.site_id.in_(site_ids),
                SiteMembership.user_id.in_(user_ids),
                SiteMembership.role.in_(("admin", "editor")),
                User.is_active,
                Site.is_active,
            )
        ).all()
    )
    return {
        site_id: [user_id for user_id in user_ids if (site_id, user_id) in may_write] for site_id in site_ids
    }


def _vacuum_analyze(engine: Engine) -> None:
    """VACUUM (ANALYZE) interactions and audit_events: fresh statistics for the planner and a visibility map for
    index-only counts. VACUUM needs autocommit and no statement timeout; the pool's pre-ping may
    have opened a transaction on a reused connection, so end it first, and throw the connection
    away afterwards rather than return it with the API's settings changed."""
    from chalicelib.interactions.seed import no_read_timeout

    raw = engine.raw_connection()
    try:
        raw.rollback()
        driver = raw.driver_connection
        assert driver is not None  # a connection fresh from the pool
        driver.autocommit = True
        with no_read_timeout(driver):
            # Simple queries, and the timeout set back before the connection goes: behind a
            # transaction pooler nothing may stay on a server connection.
            driver.execute_simple("SET statement_timeout = 0")
            try:
                driver.execute_simple("VACUUM (ANALYZE) interactions")
                driver.execute_simple("VACUUM (ANALYZE) audit_events")
            finally:
                driver.execute_simple("RESET statement_timeout")
    finally:
        raw.invalidate()
