"""Demo data for local runs and benchmarks: sites, users with each role, and interactions."""
from __future__ import annotations

import secrets

from sqlalchemy import select

from chalicelib.auth.passwords import hash_password
from chalicelib.kit.usernames import same_name
from chalicelib.models import Site, SiteMembership, User

SITE_NAMES = ["Marketing", "Sales", "Support", "Engineering", "Operations", "Finance",
              "Legal", "Research", "Partnerships", "Training"]
SITE_DESCRIPTIONS = {
    "Marketing": "Campaigns, events and agency meetings",
    "Sales": "Prospects, demos and renewals",
    "Support": "Escalations and customer reviews",
}
# (username, role on the first site, member of every site?)
DEMO_USERS = [
    ("demo", "admin", True),      # several sites: picks one after login
    ("editor", "editor", False),  # one site: logged straight into it
    ("viewer", "viewer", False),
]


def _site_name(index: int) -> str:
    if index < len(SITE_NAMES):
        return SITE_NAMES[index]
    return f"Site {index + 1}"


def seed_accounts(session, *, sites: int, password: str) -> tuple[list[int], list[int]]:
    """Create (or reuse) the demo sites and users; set the demo users' password. Returns the
    site ids and the user ids."""
    site_ids = []
    for index in range(max(1, sites)):
        name = _site_name(index)
        site = session.scalars(select(Site).where(Site.name == name)).first()
        if site is None:
            site = Site(name=name, description=SITE_DESCRIPTIONS.get(name, f"{name} team"))
            session.add(site)
            session.flush()
        site_ids.append(site.id)
    password_hash = hash_password(password)
    user_ids = []
    for username, role, everywhere in DEMO_USERS:
        user = session.scalars(select(User).where(same_name(User.username, username))).first()
        if user is None:
            user = User(username=username, email=f"{username}@example.com", password_hash=password_hash)
            session.add(user)
            session.flush()
        else:
            user.password_hash, user.is_active = password_hash, True
        user_ids.append(user.id)
        for site_id in site_ids if everywhere else site_ids[:1]:
            membership = session.get(SiteMembership, (user.id, site_id))
            if membership is None:
                session.add(SiteMembership(user_id=user.id, site_id=site_id, role=role))
            else:
                membership.role = role
    session.flush()
    return site_ids, user_ids


def seed(*, sites: int = 3, interactions: int = 300, password: str | None = None,
         progress: bool = True) -> str:
    """Seed everything in one transaction and print the demo credentials. Returns the password.

    Interactions are spread with `seed.site_shares` (the first site gets 20 %, at least an equal
    share) and streamed with COPY; statistics and the visibility map are refreshed afterwards so
    the planner and index-only counts see the new rows at once.
    """
    import time

    from chalicelib.db import get_engine, session_scope
    from chalicelib.interactions import seed as interaction_seed

    password = password or secrets.token_urlsafe(12)
    started = time.perf_counter()
    with session_scope() as session:
        site_ids, user_ids = seed_accounts(session, sites=sites, password=password)
        # Rows are written by the users who may write there: demo (admin everywhere), and the
        # editor on the first site.
        writers = {site_id: [user_ids[0]] for site_id in site_ids}
        writers[site_ids[0]] = user_ids[:2]
        shares = interaction_seed.bulk_create(session, site_ids=site_ids, writers=writers,
                                              count=interactions, progress=progress)
    if interactions:
        _vacuum_analyze(get_engine())
        seconds = time.perf_counter() - started
        # No second rate here: the progress bar's is the rows' (the COPY); this total also counts
        # the accounts' password hash, index builds and VACUUM.
        print(f"Seeded {interactions:,} interactions in {seconds:.1f} s in all; per site: "
              + ", ".join(f"{_site_name(i)} {n:,}" for i, n in enumerate(shares)))
    print(f"Demo users (password for all: {password})")
    for username, role, everywhere in DEMO_USERS:
        where = "every demo site" if everywhere else _site_name(0)
        print(f"  {username:<8} {role:<7} on {where}")
    return password


def _vacuum_analyze(engine) -> None:
    """VACUUM (ANALYZE) interactions: fresh statistics for the planner and a visibility map for
    index-only counts. VACUUM needs autocommit and no statement timeout; the pool's pre-ping may
    have opened a transaction on a reused connection, so end it first, and throw the connection
    away afterwards rather than return it with the API's settings changed."""
    from chalicelib.interactions.seed import no_read_timeout

    raw = engine.raw_connection()
    try:
        raw.rollback()
        driver = raw.driver_connection
        driver.autocommit = True
        with no_read_timeout(driver):
            cursor = driver.cursor()
            cursor.execute("SET statement_timeout = 0")
            cursor.execute("VACUUM (ANALYZE) interactions")
    finally:
        raw.invalidate()
