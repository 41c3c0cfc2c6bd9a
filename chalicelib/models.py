"""All ORM models. Every timestamp is `timestamptz`; constraint names follow one convention so that
migrations can refer to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

RoleName = Literal["viewer", "editor", "admin"]
InteractionTypeName = Literal["Meeting", "Call", "Email", "Update", "Review", "Training"]
ROLES: tuple[str, ...] = get_args(RoleName)
WRITE_ROLES = ("editor", "admin")
INTERACTION_TYPES: tuple[str, ...] = get_args(InteractionTypeName)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# An address as it is compared (chalicelib/kit/emails.py): ASCII letters lowercased, in any locale.
EMAIL_FOLDED = 'lower(email COLLATE "C")'


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        # Usernames and e-mail addresses are case-insensitive: one unique index each. Both fold
        # ASCII letters only, the same in every locale (kit/usernames.py, migration 0006;
        # kit/emails.py, migration 0008): one address, one account.
        Index("uq_users_username_folded", func.lower(text('username COLLATE "C"')), unique=True),
        Index("uq_users_email_folded", "email_folded", unique=True),
        CheckConstraint("length(btrim(username)) between 1 and 64", name="username_length"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str] = mapped_column(String(254))
    email_folded: Mapped[str] = mapped_column(String(254), Computed(EMAIL_FOLDED, persisted=True))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    last_login: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # May create sites over the API (set with `cli platform-admin`); grants nothing inside a site.
    platform_admin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))


class Site(Base):
    __tablename__ = "sites"
    # Site names are unique case-insensitively, and by their confusable skeleton (kit/names.py,
    # migration 0013; the API's 409). The skeleton's index holds its md5: an NFKC form and its
    # skeleton may be many times longer than the name, beyond what a B-tree entry may hold.
    __table_args__ = (
        Index("uq_sites_name_lower", func.lower(text("name")), unique=True),
        Index("uq_sites_name_skeleton", func.md5(text("name_skeleton")), unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # Set by every writer of a name (kit.names.skeleton): the API's statements, the CLI, the demo.
    name_skeleton: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SiteMembership(Base):
    __tablename__ = "site_memberships"
    __table_args__ = (
        CheckConstraint(f"role in ({_sql_list(ROLES)})", name="role"),
        Index("ix_site_memberships_site_id", "site_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Interaction(Base):
    __tablename__ = "interactions"
    __table_args__ = (
        CheckConstraint(f"type in ({_sql_list(INTERACTION_TYPES)})", name="type"),
        CheckConstraint("end_datetime is null or end_datetime >= start_datetime", name="end_after_start"),
        CheckConstraint("version >= 1", name="version_positive"),
        CheckConstraint("length(title) between 1 and 255", name="title_length"),
        CheckConstraint("length(lead) between 1 and 100", name="lead_length"),
        CheckConstraint("description is null or length(description) <= 10000", name="description_length"),
        CheckConstraint("notes is null or length(notes) <= 10000", name="notes_length"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="RESTRICT"))
    title: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(32))
    lead: Mapped[str] = mapped_column(String(100))
    start_datetime: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    timezone: Mapped[str] = mapped_column(String(64))
    end_datetime: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    location: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    notes: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, server_default=text("1"))


class IdempotencyKey(Base):
    """An `Idempotency-Key` of POST /api/interactions and the first successful answer to it,
    stored with the create it answers and replayed for 24 h (chalicelib/interactions/idempotency.py)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        CheckConstraint("length(key) between 1 and 255", name="key_length"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(SmallInteger)  # the HTTP status replayed
    response: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {"body": ..., "headers": {...}}
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SiteInteractionCount(Base):
    """How many interactions a site has: kept exact by statement-level triggers on interactions
    (migration 0004), so an unfiltered list's total is one primary-key read. Never written here."""

    __tablename__ = "site_interaction_counts"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    interactions: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
    # Renewed (from one sequence) by every statement that writes the site's interactions
    # (migration 0005): a total counted at one change number holds as long as the number does.
    changes: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))


InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
INVITATION_STATUSES: tuple[str, ...] = get_args(InvitationStatus)


class Invitation(Base):
    """A site's invitation of an e-mail address to a role (chalicelib/sites/invitations.py). Its
    token is delivered to the address and stored only as its SHA-256 (`token_hash`, null until the
    sender mints one). A pending invitation past `expires_at` is *expired* on read; the status
    `expired` is stored only when a new invitation takes its place. At most one pending invitation
    per site and address."""

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(f"role in ({_sql_list(ROLES)})", name="role"),
        CheckConstraint(f"status in ({_sql_list(INVITATION_STATUSES)})", name="status"),
        CheckConstraint("refused_attempts >= 0", name="refused_attempts"),
        Index(
            "uq_invitations_site_id_email_folded_pending",
            "site_id",
            "email_folded",
            unique=True,
            postgresql_where=text("status = 'pending'"),
        ),
        Index("ix_invitations_site_id_id", "site_id", "id"),
        Index("ix_invitations_invited_by", "invited_by", postgresql_where=text("status = 'pending'")),
        Index("ix_invitations_email_folded", "email_folded", postgresql_where=text("status = 'pending'")),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))
    email_folded: Mapped[str] = mapped_column(String(254), Computed(EMAIL_FOLDED, persisted=True))
    role: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), server_default=text("'pending'"))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Accepts refused with this token (a wrong password, a taken username...): 10 use it up.
    refused_attempts: Mapped[int] = mapped_column(SmallInteger, server_default=text("0"))
    invited_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class InvitationOutbox(Base):
    """An invitation's message waiting to be sent: written with the invitation (or its resend) in
    one transaction, holding only its id — never a token. The sender claims a row by moving
    `next_attempt_at` on (a lease: one sender at a time), mints the token, stores its hash, sends,
    and deletes the row; a row left behind is retried by the scheduled function."""

    __tablename__ = "invitation_outbox"
    __table_args__ = (Index("ix_invitation_outbox_next_attempt_at", "next_attempt_at"),)

    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), primary_key=True
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SetupTokenAccount(Base):
    """An account whose password was set through a setup token (a credential a site admin held,
    before invitations), recorded by migration 0008 for operators to review (`cli setup-accounts`)."""

    __tablename__ = "setup_token_accounts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    issuing_site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id", ondelete="SET NULL"))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


AuditVia = Literal["api", "cli"]
AuditTarget = Literal["interaction", "user", "site", "invitation"]
AuditAction = Literal[
    "interaction.created",
    "interaction.updated",
    "interaction.deleted",
    "membership.added",
    "membership.role_changed",
    "membership.removed",
    "user.created",
    "user.setup_token_issued",
    "user.setup_completed",
    "user.password_changed",
    "user.activated",
    "user.deactivated",
    "user.deleted",
    "user.platform_admin_changed",
    "user.unlocked",
    "invitation.created",
    "invitation.resent",
    "invitation.revoked",
    "invitation.accepted",
    "site.created",
    "site.updated",
    "site.activated",
    "site.deactivated",
    "audit.pruned",  # the command line's only: no site, so never read over the API
]
AUDIT_VIAS: tuple[str, ...] = get_args(AuditVia)
AUDIT_TARGETS: tuple[str, ...] = get_args(AuditTarget)
# What the table holds: also `audit` (`audit.pruned`'s target, the newest event it deleted), which
# no site's events have, so the API's filters and answers never name it.
STORED_AUDIT_TARGETS: tuple[str, ...] = (*AUDIT_TARGETS, "audit")
AUDIT_ACTIONS: tuple[str, ...] = get_args(AuditAction)


class AuditEvent(Base):
    """One change, written by the statement (or at least the transaction) that made it
    (chalicelib/audit). Append-only: nothing updates a row; `prune-audit` deletes by age. No
    foreign keys: an event outlives the interaction, account or site it describes, and names its
    actor as they were then."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(f"via in ({_sql_list(AUDIT_VIAS)})", name="via"),
        CheckConstraint(f"target_type in ({_sql_list(STORED_AUDIT_TARGETS)})", name="target_type"),
        CheckConstraint(f"action in ({_sql_list(AUDIT_ACTIONS)})", name="action"),
        CheckConstraint(
            "(via = 'api' and actor_id is not null and operator is null) or "
            "(via = 'cli' and actor_id is null and operator is not null)",
            name="origin",
        ),
        # A site's newest page; one target's history; the audit list's actor and action filters.
        Index("ix_audit_events_site_id_id", "site_id", "id"),
        Index("ix_audit_events_site_id_target", "site_id", "target_type", "target_id", "id"),
        Index("ix_audit_events_site_id_actor_id", "site_id", "actor_id", "id"),
        Index("ix_audit_events_site_id_action", "site_id", "action", "id"),
        # Pruning by age: a BRIN index fits a table written in time order and costs next to nothing.
        Index("ix_audit_events_occurred_at", "occurred_at", postgresql_using="brin"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    via: Mapped[str] = mapped_column(String(8))
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_username: Mapped[str | None] = mapped_column(String(64))
    operator: Mapped[str | None] = mapped_column(String(255))
    site_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(128))
    gateway_request_id: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(16))
    target_id: Mapped[int] = mapped_column(BigInteger)
    target_version: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class SiteAuditCount(Base):
    """How many events a site has: kept exact by statement-level triggers on audit_events
    (migration 0007), so the unfiltered audit list's total is one primary-key read."""

    __tablename__ = "site_audit_counts"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    events: Mapped[int] = mapped_column(BigInteger, server_default=text("0"))
