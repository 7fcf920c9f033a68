"""The tables every node keeps (SQLAlchemy Core; the same on SQLite and PostgreSQL)."""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()
# 64-bit on PostgreSQL; on SQLite an INTEGER PRIMARY KEY is the 64-bit rowid.
Position = BigInteger().with_variant(Integer, "sqlite")

# Every event this node knows, in the order it learnt them. ``position`` is the feed cursor
# that lower nodes pull by; ``via`` is the peer an event arrived from (NULL: made here).
events = Table(
    "events",
    metadata,
    Column("position", Position, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("case_id", String(36), nullable=False, index=True),
    Column("origin_node", String(12), nullable=False),
    Column("origin_seq", BigInteger, nullable=False),
    Column("type", String(48), nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),  # microseconds since the epoch, UTC
    Column("catalog_version", String(32), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("township_code", String(9), nullable=False),
    Column("via", String(12)),
    sqlite_autoincrement=True,
)
# A feed leaves out the events its puller sent up itself (relay.ledger.feed): most of a
# township's events at the district, most of a village's at its township. The feed indexes
# hold only the others, so a pull never walks the puller's own events (a waiting pull reads
# its feed every second; a full index made that read grow with everything the puller sent
# since its last answer: bench/README.md). The feed's query repeats these conditions.
VILLAGE_FEEDABLE = "via IS NULL OR via <> village_code"
TOWNSHIP_FEEDABLE = "via IS NULL OR via <> township_code"
for _level, _feedable in (("village", VILLAGE_FEEDABLE), ("township", TOWNSHIP_FEEDABLE)):
    _where = text(_feedable)
    Index(
        f"ix_events_{_level}_feedable",
        events.c[f"{_level}_code"],
        events.c.position,
        postgresql_where=_where,
        sqlite_where=_where,
    )

# The current state of each case, projected from its events.
cases = Table(
    "cases",
    metadata,
    Column("case_id", String(36), primary_key=True),
    Column("item_code", String(64), nullable=False),
    Column("status", String(24), nullable=False),
    Column("owner", String(12), nullable=False),
    Column("village_code", String(12), nullable=False),
    Column("township_code", String(9), nullable=False),
    Column("decide_level", String(10), nullable=False),
    Column("applicant_name", Text, nullable=False),
    Column("applicant_id", String(18), nullable=False),
    Column("phone", String(15), nullable=False),
    Column("missing_materials", Text, nullable=False),  # JSON list
    Column("reason", Text, nullable=False, default=""),  # last decision / refusal reason
    Column("departments", Text, nullable=False, default="[]"),  # joint items: [[name, verdict]]
    Column("catalog_version", String(32), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deadline", String(10)),  # ISO date; NULL until accepted
    Column("statutory_deadline", String(10)),
    Column("paused_on", String(10)),  # set while a correction or a law-excluded step runs
    Column("decided_on", String(10)),
    Column("paused_step", String(64), nullable=False, default="", server_default=""),  # 公示 … while paused
    Column("window", String(32), nullable=False, default="", server_default=""),  # owner's window last acting
    Column("yellow_on", String(10)),  # from this day a running case shows yellow (supervision)
    Column("rating", Integer),  # the applicant's latest score, 1 to 5
    # On a village: name, ID number and phone sealed with its data key (relay/vault.py), the
    # three columns above left empty; NULL elsewhere, and once the village has forgotten them.
    Column("applicant_sealed", LargeBinary),
    # On a village: when every event it made for the case, closed, was acknowledged upstream
    # (its personal data is forgotten forget_after_days later), 0 once forgotten, NULL before.
    Column("settled_at", BigInteger),
)
# By status, then deadline: the open cases past or near their deadlines (relay.supervision).
Index("ix_cases_status_deadline", cases.c.status, cases.c.deadline)

# Cases counted as they change (relay/tallies.py), for supervision: by owner, item, window,
# rating and what their light is whatever the day ("kind"); running cases under their dates
# ('' elsewhere), so the day's lights are summed from these rows, not scanned from the cases.
case_counts = Table(
    "case_counts",
    metadata,
    Column("owner", String(12), primary_key=True),
    Column("item_code", String(64), primary_key=True),
    Column("window", String(32), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("deadline", String(10), primary_key=True),
    Column("statutory_deadline", String(10), primary_key=True),
    Column("yellow_on", String(10), primary_key=True),
    Column("rating", Integer, primary_key=True, autoincrement=False),  # 0: not rated
    Column("n", BigInteger, nullable=False),
)

# Running cases (accepted, not paused, not finished) counted by township and dates, a district's
# own cases under their village's township: the warnings per township (relay/tallies.py).
township_counts = Table(
    "township_counts",
    metadata,
    Column("township_code", String(9), primary_key=True),
    Column("deadline", String(10), primary_key=True),
    Column("statutory_deadline", String(10), primary_key=True),
    Column("yellow_on", String(10), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

# Cases counted by village and status, with the newest one's intake time (coverage).
village_counts = Table(
    "village_counts",
    metadata,
    Column("village_code", String(12), primary_key=True),
    Column("status", String(24), primary_key=True),
    Column("n", BigInteger, nullable=False),
    Column("latest", BigInteger, nullable=False),
)

# Events to send upstream, in hop-sequence order (``seq`` from the "hop_seq" counter, never
# reused). Acknowledged rows are
# kept for a retention period so they can be replayed to an upstream restored from a backup.
outbox = Table(
    "outbox",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# Per sending node: the highest hop sequence consumed, committed with the events it covers.
inbox_peers = Table(
    "inbox_peers",
    metadata,
    Column("sender", String(12), primary_key=True),
    Column("stream", BigInteger, nullable=False),
    Column("applied_upto", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Events that can never be applied: received and refused here (``direction`` "in"), or sent
# and refused by the upstream ("out"). Visible to staff; they never block what follows.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("direction", String(3), nullable=False),
    Column("peer", String(12), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("event_id", String(64), nullable=False, index=True),
    Column("case_id", String(36), nullable=False),
    Column("type", String(48), nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
)

# Small named values: counters and cursors ("origin_seq", "acked_upto", "pull_cursor", ...).
state = Table(
    "state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("value", BigInteger, nullable=False),
    Column("text", String(64)),
)

# Every catalog version this node has seen (the newest is the one it takes requests under);
# older ones stay, since a case keeps the version it was taken under.
catalogs = Table(
    "catalogs",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("document", LargeBinary, nullable=False),
    Column("published_at", BigInteger, nullable=False),
)

# Every holiday calendar version this node has seen (relay/calendars.py): the district
# publishes years the software does not ship; deadlines count by all of them, oldest first.
calendars = Table(
    "calendars",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("document", LargeBinary, nullable=False),
    Column("published_at", BigInteger, nullable=False),
)

# The staff roster of a township or district service center (AB岗 and 首席代表): who may act,
# at which window ("" for a supervisor, who has none), in which role. An empty roster means staff
# are not checked (demos, tests).
staff = Table(
    "staff",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("window", String(32), nullable=False),
    Column("role", String(16), nullable=False),  # "A", "B", "chief" or "supervisor"
    Column("department", Text, nullable=False, default=""),  # the chief's department
)

# The items each window serves (JSON list of item codes; empty: every item, 综合窗口).
windows = Table(
    "windows",
    metadata,
    Column("window", String(32), primary_key=True),
    Column("item_codes", Text, nullable=False),
)

# Rectification records (整改) projected from the events: a bad review or a complaint opens one,
# due by ``rectify_by``; a case.rectified event closes it with its outcome.
rectifications = Table(
    "rectifications",
    metadata,
    Column("record", String(64), primary_key=True),  # the event id of the rating or complaint
    Column("case_id", String(36), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # "bad_review" or "complaint"
    Column("rectify_by", String(10), nullable=False),
    Column("outcome", Text),  # NULL while open
)

# Complaints against a window rather than a case (窗口投诉), filed at the center that runs the
# window; each is a rectification record like a bad review, closed with its outcome.
window_complaints = Table(
    "window_complaints",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("window", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("staff", String(64), nullable=False),  # who recorded it
    Column("filed_on", String(10), nullable=False),
    Column("rectify_by", String(10), nullable=False),
    Column("outcome", Text),  # NULL while open
    Column("closed_by", String(64)),
)

# Nodes known to this node: enrolled ones (district) and those that sent a heartbeat.
nodes = Table(
    "nodes",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("role", String(10), nullable=False),
    Column("name", Text, nullable=False),
    Column("enrolled_at", BigInteger),
    Column("last_seen", BigInteger),
    Column("backlog", BigInteger),
    Column("software_version", String(32)),
    Column("catalog_version", String(32)),
    Column("clock_offset_ms", BigInteger),
    Column("last_push", BigInteger),  # its last batch its upstream acknowledged, as it reported
    Column("last_pull", BigInteger),
)

# Revoked nodes (relay/revocations.py): every certificate issued to ``code`` before
# ``revoked_at`` is refused. Kept by the district (`district-node revoke`), pulled by every node.
revocations = Table(
    "revocations",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("revoked_at", BigInteger, nullable=False, index=True),  # microseconds, the district's clock
    Column("reason", Text, nullable=False, default=""),
)

# One-time enrollment tokens a township made for its villages (relay/enrollment.py).
enroll_tokens = Table(
    "enroll_tokens",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("secret", String(64), nullable=False),  # the HMAC key; never sent over the wire
    Column("village", String(12), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),  # NULL until a village enrolled with it
    Column("made_at", BigInteger, nullable=False),  # a token made before a revocation is refused
)

# The audit trail (relay/audit.py): one row per event this node applied, in the order it
# applied them, written in the same transaction. Append-only and hash-chained: row_hash covers
# prev_hash (the row before's row_hash), seq, event_hash (the event's digest) and staff.
audit = Table(
    "audit",
    metadata,
    Column("seq", Position, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("event_hash", LargeBinary, nullable=False),
    Column("staff", String(64), nullable=False),  # who acted ("": no staff action)
    Column("prev_hash", LargeBinary, nullable=False),
    Column("row_hash", LargeBinary, nullable=False),
)

# The last row of each lower node's chain this node received and checked (its witness).
audit_peers = Table(
    "audit_peers",
    metadata,
    Column("node", String(12), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("row_hash", LargeBinary, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Breaks found in a lower node's chain as it was received: security events, kept for staff.
audit_breaks = Table(
    "audit_breaks",
    metadata,
    Column("id", Position, primary_key=True, autoincrement=True),
    Column("node", String(12), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("reason", Text, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
)
