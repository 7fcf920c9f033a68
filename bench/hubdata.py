"""A district hub's database as months of service would leave it, made without the relay.

Cases are spread over the divisions file's villages and over the days before today (at the
rate the district simulation takes them, ~7,300 a day network-wide, so 1,000,000 cases span
about seven months), each with the events the product would hold for it at the hub: the
submission, the township's acceptance, an escalation and the district's acceptance for district
items, the decision (one per department for joint items), delivery, the rating asked for at
delivery, bad reviews and complaints with their rectification, withdrawals, refusals,
correction notices and law-excluded pauses. Rows have the product's columns and payloads of
the shapes docs/events.md gives, with realistic sizes; they are bulk-loaded with COPY into the
schema the product's migrations make, with the secondary indexes built after the load (as a
restore would), then VACUUM ANALYZE (as autovacuum would have done on a live hub).
"""

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

import asyncpg

from casework import Divisions, Item, default_catalog
from casework.calendar import WorkCalendar, default_calendar
from relay.clock import CHINA
from relay.schema import cases as cases_table
from relay.schema import events as events_table

YellowFrom = Callable[[date, int, WorkCalendar], date]
yellow_from: YellowFrom | None
try:  # the first yellow day, stamped at acceptance where the checkout has it
    from casework.clockfacts import yellow_from
except ImportError:  # pragma: no cover - depends on the checkout
    yellow_from = None

DAY_US = 86_400 * 1_000_000
HOUR_US = 3_600 * 1_000_000
CASES_PER_DAY = 7_300  # 419 villages x 5-30 requests a working day, as the district simulation
CHUNK = 20_000  # cases generated and copied at a time
EVENT_COLUMNS = [c.name for c in events_table.columns]
CASE_COLUMNS = [c.name for c in cases_table.columns]
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬建国德福贵"
CHECK = "10X98765432"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def resident_id(rng: random.Random) -> str:
    """A valid resident ID number (GB 11643) of someone born in Hechuan."""
    born = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 65))
    body = f"500117{born:%Y%m%d}{rng.randrange(1000):03d}"
    return body + CHECK[sum(int(d) * w for d, w in zip(body, WEIGHTS, strict=True)) % 11]


def applicant_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def encode(payload: dict[str, Any]) -> bytes:
    """As relay.records.encode_payload."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def china_date(us: int) -> date:
    return datetime.fromtimestamp(us / 1_000_000, tz=CHINA).date()


def village_weights(divisions: Divisions, rng: random.Random) -> list[tuple[str, str, float]]:
    """(village, township, requests per working day) for every village: 5 to 30, uniform."""
    villages = sorted(divisions.of_level("village"), key=lambda d: d.code)
    return [(v.code, v.parent_code, rng.uniform(5, 30)) for v in villages]


@dataclass
class Counts:
    """What the generator made, to check the loaded database against."""

    cases: int = 0
    events: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    ratings: int = 0
    bad_reviews: int = 0
    open_records: int = 0


class Generator:
    """Cases and their hub events, deterministic for a seed."""

    def __init__(self, divisions: Divisions, total: int, now_us: int, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.district = divisions.district.code
        self.villages = village_weights(divisions, self.rng)
        self.cumulative = _cumulative([w for _, _, w in self.villages])
        self.items = default_catalog().takeable_at("village")
        self.version = default_catalog().version
        self.calendar: WorkCalendar = default_calendar()
        self.total = total
        self.now = now_us
        self.today = china_date(now_us)
        # Spread over the calendar days that many cases take at CASES_PER_DAY a working day.
        self.span_us = int(max(7.0, total / CASES_PER_DAY * 7 / 5) * DAY_US)
        self.position = 0
        self.last_seq: dict[str, int] = {}
        self.counts = Counts()
        self.workday = lru_cache(maxsize=65_536)(self.calendar.add_working_days)
        self.yellow = lru_cache(maxsize=65_536)(self._yellow)

    def _yellow(self, deadline: date, committed_days: int) -> date:
        assert yellow_from is not None
        return yellow_from(deadline, committed_days, self.calendar)

    def chunks(self) -> Iterator[tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]]:
        """(case rows, event rows) of CHUNK cases at a time, oldest cases first."""
        made = 0
        while made < self.total:
            size = min(CHUNK, self.total - made)
            ages = sorted((self.rng.random() * self.span_us for _ in range(size)), reverse=True)
            cases: list[tuple[Any, ...]] = []
            events: list[tuple[Any, ...]] = []
            for age in ages:
                case, made_events = self.case(self.now - int(age))
                cases.append(case)
                events.extend(made_events)
            made += size
            yield cases, events

    def case(self, created: int) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        """One case taken at ``created`` (µs) and everything that happened to it since."""
        rng = self.rng
        village, township, _ = self.villages[_pick(self.cumulative, rng.random())]
        item = rng.choice(self.items)
        case_id = uuid7_at(created, rng)
        handed = [m.name for m in item.materials if not m.required or rng.random() < 0.85]
        missing = [m.name for m in item.materials if m.required and m.name not in handed]
        joint = list(item.joint_departments)
        row: dict[str, Any] = {
            "case_id": case_id,
            "item_code": item.code,
            "status": "submitted",
            "owner": township,
            "village_code": village,
            "township_code": township,
            "decide_level": item.decide_level,
            "applicant_name": applicant_name(rng),
            "applicant_id": resident_id(rng),
            "phone": f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
            "missing_materials": json.dumps(missing, ensure_ascii=False),
            "reason": "",
            "departments": json.dumps([[d, "pending"] for d in joint], ensure_ascii=False),
            "catalog_version": self.version,
            "created_at": created,
            "updated_at": created,
            "deadline": None,
            "statutory_deadline": None,
            "paused_on": None,
            "decided_on": None,
            "paused_step": "",
            "window": "",
            "yellow_on": None,
            "rating": None,
        }
        made = _Case(self, row, village, township)
        made.add(village, "case.submitted", created, self.submission(item, row, handed, missing, joint))
        self.lifecycle(made, item, created)
        self.counts.cases += 1
        self.counts.events += len(made.events)
        self.counts.by_status[row["status"]] = self.counts.by_status.get(row["status"], 0) + 1
        return tuple(row.get(c) for c in CASE_COLUMNS), made.events

    def submission(
        self, item: Item, row: dict[str, Any], handed: list[str], missing: list[str], joint: list[str]
    ) -> dict[str, Any]:
        rng = self.rng
        materials = [
            {
                "name": name,
                "sha256": hashlib.sha256(rng.randbytes(8)).hexdigest(),
                "size": rng.randrange(80_000, 900_000),
            }
            for name in handed
        ]
        return {
            "item_code": item.code,
            "decide_level": item.decide_level,
            "applicant": {
                "name": row["applicant_name"],
                "id_number": row["applicant_id"],
                "phone": row["phone"],
            },
            "fields": {},
            "materials": materials,
            "missing_materials": missing,
            "mandate": {"agent": "代办员", "form": "in_person"},
            "joint_departments": joint,
            "village_code": row["village_code"],
            "township_code": row["township_code"],
        }

    def lifecycle(self, case: "_Case", item: Item, created: int) -> None:
        """The case's events after its submission, up to now."""
        rng, row, township, district = self.rng, case.row, case.township, self.district
        window = f"{township}:{rng.randrange(1, 5)}"
        staff = {"staff": applicant_name(rng), "window": str(window.split(":")[1]), "role": ""}
        if rng.random() < 0.015:  # withdrawn soon after
            at = created + rng.randrange(HOUR_US, 3 * DAY_US)
            if at < self.now:
                command = case.add(case.village, "cmd.withdraw", at, {"reason": "不再申请"})
                case.add(
                    row["owner"],
                    "case.withdrawn",
                    at + HOUR_US,
                    {"reason": "不再申请", "command_event_id": command},
                )
                row.update(status="withdrawn", reason="不再申请", updated_at=at + HOUR_US)
            return
        accepted = created + rng.randrange(HOUR_US, 30 * HOUR_US)
        if accepted > self.now:
            return
        if rng.random() < 0.02:  # not accepted (不予受理)
            case.add(township, "case.refused", accepted, staff | {"reason": "不符合受理条件"})
            row.update(status="rejected", reason="不符合受理条件", window=window, updated_at=accepted)
            return
        on = china_date(accepted)
        deadline = self.workday(on, item.committed_days)
        statutory = self.workday(on, item.statutory_days)
        dates = {
            "accepted_on": on.isoformat(),
            "deadline": deadline.isoformat(),
            "statutory_deadline": statutory.isoformat(),
        }
        if yellow_from is not None:
            dates["yellow_on"] = self.yellow(deadline, item.committed_days).isoformat()
        case.add(township, "case.accepted", accepted, staff | dates)
        row.update(
            status="accepted",
            window=window,
            deadline=dates["deadline"],
            statutory_deadline=dates["statutory_deadline"],
            yellow_on=dates.get("yellow_on"),
            updated_at=accepted,
        )
        days = max(1, item.committed_days) * 1.4  # calendar days the committed time spans
        decided = accepted + int(rng.uniform(0.1, 1.1) * days * DAY_US)
        owner = township
        if item.decide_level == "district":
            escalated = accepted + int((decided - accepted) * rng.uniform(0.2, 0.5))
            if escalated > self.now:
                self.still_open(case, item, accepted, staff)
                return
            case.add(township, "case.escalated", escalated, staff | {"opinion": "初审通过"})
            row.update(status="escalated", owner=district, updated_at=escalated)
            owner, window = district, f"{district}:{rng.randrange(1, 9)}"
            staff = {"staff": applicant_name(rng), "window": window.split(":")[1], "role": ""}
            taken = escalated + rng.randrange(HOUR_US, 30 * HOUR_US)
            if taken > self.now:
                return
            case.add(district, "case.accepted", taken, staff)
            row.update(status="accepted", window=window, updated_at=taken)
            decided = max(decided, taken + HOUR_US)
        if decided > self.now:
            self.still_open(case, item, accepted, staff)
            return
        approved = rng.random() < 0.92
        decided_on = china_date(decided).isoformat()
        if item.joint_departments:
            for n, department in enumerate(item.joint_departments):
                agrees = approved or n < len(item.joint_departments) - 1
                body = staff | {
                    "department": department,
                    "approved": agrees,
                    "reason": "审核通过" if agrees else "不符合条件",
                    "decided_on": decided_on,
                }
                case.add(owner, "case.department_decided", decided + n * HOUR_US, body)
            verdict = "approved" if approved else "rejected"
            row["departments"] = json.dumps(
                [
                    [d, "approved" if approved or n < len(item.joint_departments) - 1 else "rejected"]
                    for n, d in enumerate(item.joint_departments)
                ],
                ensure_ascii=False,
            )
            decided += (len(item.joint_departments) - 1) * HOUR_US
        else:
            verdict = "approved" if approved else "rejected"
            case.add(
                owner,
                "case.decided",
                decided,
                staff | {"approved": approved, "reason": "符合条件" if approved else "不符合条件"},
            )
        row.update(
            status=verdict,
            reason="符合条件" if approved else "不符合条件",
            decided_on=decided_on,
            updated_at=decided,
        )
        delivered = decided + rng.randrange(DAY_US, 5 * DAY_US)
        if not approved or delivered > self.now or rng.random() > 0.85:
            return
        command = case.add(case.village, "cmd.deliver", delivered, {})
        case.add(owner, "case.delivered", delivered + HOUR_US // 4, {"command_event_id": command})
        row.update(status="delivered", updated_at=delivered + HOUR_US // 4)
        rated = delivered + HOUR_US // 2
        if rng.random() < 0.55 and rated < self.now:
            score = rng.choices((5, 4, 3, 2, 1), (70, 20, 7, 2, 1))[0]
            comment = "" if score > 3 else "等的时间太长"
            command = case.add(case.village, "cmd.rate", rated, {"score": score, "comment": comment})
            rating: dict[str, Any] = {"score": score, "comment": comment, "command_event_id": command}
            self.counts.ratings += 1
            if score <= 2:
                self.counts.bad_reviews += 1
                rating["rectify_by"] = self.workday(china_date(rated), 15).isoformat()
            record = case.add(owner, "case.rated", rated + HOUR_US // 4, rating)
            row["rating"] = score
            if score <= 2:
                fixed = rated + rng.randrange(DAY_US, 20 * DAY_US)
                if fixed < self.now and rng.random() < 0.6:
                    case.add(
                        owner, "case.rectified", fixed, staff | {"of": record, "outcome": "已回访并整改"}
                    )
                else:
                    self.counts.open_records += 1
        if rng.random() < 0.003:
            at = delivered + DAY_US
            if at < self.now:
                command = case.add(case.village, "cmd.complain", at, {"text": "办理不及时"})
                body = {
                    "text": "办理不及时",
                    "command_event_id": command,
                    "rectify_by": self.workday(china_date(at), 15).isoformat(),
                }
                case.add(owner, "case.complaint_filed", at + HOUR_US // 4, body)
                self.counts.open_records += 1

    def still_open(self, case: "_Case", item: Item, accepted: int, staff: dict[str, Any]) -> None:
        """An open case: some wait on a correction or on a law-excluded step."""
        rng, row = self.rng, case.row
        if row["status"] != "accepted" or row["owner"] != case.township:
            return
        at = accepted + rng.randrange(HOUR_US, 2 * DAY_US)
        if at > self.now:
            return
        if rng.random() < 0.05:
            missing = [m.name for m in item.materials if m.required][:1]
            body = staff | {"missing": missing, "note": "请补充", "paused_on": china_date(at).isoformat()}
            case.add(case.township, "case.correction_requested", at, body)
            row.update(
                status="correction_requested",
                paused_on=china_date(at).isoformat(),
                missing_materials=json.dumps(missing, ensure_ascii=False),
                updated_at=at,
            )
        elif item.excluded_steps and rng.random() < 0.3:
            step = item.excluded_steps[0]
            body = staff | {"step": step, "note": "", "paused_on": china_date(at).isoformat()}
            case.add(case.township, "case.paused", at, body)
            row.update(paused_on=china_date(at).isoformat(), paused_step=step, updated_at=at)

    def event_id(self, origin: str, at: int) -> tuple[str, int]:
        """origin:origin_seq, the sequence following the clock as the product's does."""
        seq = max(self.last_seq.get(origin, 0) + 1, at)
        self.last_seq[origin] = seq
        return f"{origin}:{seq}", seq


class _Case:
    """One case's row and hub events while they are made."""

    def __init__(self, generator: Generator, row: dict[str, Any], village: str, township: str) -> None:
        self.generator, self.row, self.village, self.township = generator, row, village, township
        self.events: list[tuple[Any, ...]] = []

    def add(self, origin: str, kind: str, at: int, payload: dict[str, Any]) -> str:
        """Add an event made at ``origin``; returns its id. What a township or village made
        reached the hub via the township; what the hub made has no ``via``."""
        g = self.generator
        event_id, seq = g.event_id(origin, at)
        g.position += 1
        via = None if origin == g.district else self.township
        self.events.append(
            (
                g.position,
                event_id,
                self.row["case_id"],
                origin,
                seq,
                kind,
                encode(payload),
                at,
                g.version,
                self.village,
                self.township,
                via,
            )
        )
        return event_id


def uuid7_at(us: int, rng: random.Random) -> str:
    """A UUIDv7 for a moment in the past (as relay.clock.uuid7 makes for now)."""
    rand = rng.getrandbits(80)
    value = ((us // 1000) & ((1 << 48) - 1)) << 80 | 0x7 << 76 | (rand >> 68) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _cumulative(weights: list[float]) -> list[float]:
    total, running, out = sum(weights), 0.0, []
    for weight in weights:
        running += weight / total
        out.append(running)
    return out


def _pick(cumulative: list[float], x: float) -> int:
    low, high = 0, len(cumulative) - 1
    while low < high:
        middle = (low + high) // 2
        if cumulative[middle] < x:
            low = middle + 1
        else:
            high = middle
    return low


async def load(dsn: str, generator: Generator, divisions: Divisions, progress: bool = True) -> float:
    """Bulk-load the generator's cases and events, the nodes of the divisions file (all
    enrolled, townships with a recent heartbeat) and one inbox row per township; returns the
    seconds it took."""
    started = time.perf_counter()
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET maintenance_work_mem = '512MB'; SET synchronous_commit = off")
        kept = await _drop_secondary_indexes(conn)
        done = 0
        for case_rows, event_rows in generator.chunks():
            async with conn.transaction():
                await conn.copy_records_to_table("cases", records=case_rows, columns=CASE_COLUMNS)
                await conn.copy_records_to_table("events", records=event_rows, columns=EVENT_COLUMNS)
            done += len(case_rows)
            if progress:
                rate = done / (time.perf_counter() - started)
                print(
                    f"  loaded {done:>10,} cases, {generator.counts.events:>11,} events, {rate:,.0f} cases/s",
                    flush=True,
                )
        await conn.execute(
            "SELECT setval(pg_get_serial_sequence('events', 'position'), $1)", max(1, generator.position)
        )
        await _nodes(conn, divisions, generator)
        if progress:
            print("  building indexes ...", flush=True)
        for statement in kept:
            await conn.execute(statement)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def _drop_secondary_indexes(conn: asyncpg.Connection) -> list[str]:
    """Drop the unique constraints and plain indexes of cases and events (not their primary
    keys); returns the statements that make them again, as the migrations made them."""
    tables = ["cases", "events"]
    constraints = await conn.fetch(
        "SELECT conname, conrelid::regclass::text AS tab, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE contype = 'u' AND conrelid::regclass::text = ANY($1::text[])",
        tables,
    )
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1::text[])"
        " AND indexname NOT IN (SELECT conname FROM pg_constraint)",
        tables,
    )
    again = []
    for row in constraints:
        await conn.execute(f'ALTER TABLE {row["tab"]} DROP CONSTRAINT "{row["conname"]}"')
        again.append(f'ALTER TABLE {row["tab"]} ADD CONSTRAINT "{row["conname"]}" {row["def"]}')
    for row in indexes:
        await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        again.append(row["indexdef"])
    return again


async def _nodes(conn: asyncpg.Connection, divisions: Divisions, generator: Generator) -> None:
    """Every township and village enrolled; townships heartbeating; each township's inbox mark."""
    now = generator.now
    enrolled = now - 200 * DAY_US
    rows = []
    for level in ("township", "village"):
        for division in divisions.of_level(level):
            seen = now - 20_000_000 if level == "township" else None
            beat = level == "township"
            rows.append(
                (
                    division.code,
                    level,
                    division.name,
                    enrolled,
                    seen,
                    0 if beat else None,
                    "0.1.0" if beat else None,
                    generator.version if beat else None,
                    3 if beat else None,
                )
            )
    columns = [
        "code",
        "role",
        "name",
        "enrolled_at",
        "last_seen",
        "backlog",
        "software_version",
        "catalog_version",
        "clock_offset_ms",
    ]
    await conn.copy_records_to_table("nodes", records=rows, columns=columns)
    marks = await conn.fetch("SELECT via, count(*) AS n FROM events WHERE via IS NOT NULL GROUP BY via")
    await conn.copy_records_to_table(
        "inbox_peers",
        records=[(row["via"], 1, row["n"], now - 20_000_000) for row in marks],
        columns=["sender", "stream", "applied_upto", "updated_at"],
    )


def now_utc_us() -> int:
    return int(datetime.now(tz=UTC).timestamp() * 1_000_000)
