"""The revocation list: nodes whose certificates the district revoked (a lost laptop).

A revocation refuses every certificate issued to a division code before the moment it was
made (to the second: certificates carry whole seconds), so the node enrolled again afterwards,
on a new laptop, is good. The district keeps the list (`district-node revoke`); townships pull
it from the district and villages from their township, over their mutual-TLS links, and every
node keeps what it pulled: a township refuses a revoked village while the district is away.
"""

from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relay.clock import iso
from relay.db import put_row, reading
from relay.schema import revocations

PAGE = 1000  # revocations in one reply
# What a node refused for its certificate (revoked, expired, foreign) is told to do.
REENROLL = (
    "ask the district for a new bundle ('district-node enroll --code {code}') and install it "
    "with 'renew --bundle'"
)


@dataclass(frozen=True, slots=True)
class Revocation:
    code: str
    revoked_at: int  # microseconds since the epoch, by the district's clock
    reason: str = ""

    def refuses(self, issued_us: int) -> bool:
        """Whether a certificate of this code issued at ``issued_us`` is revoked."""
        return issued_us // 1_000_000 <= self.revoked_at // 1_000_000

    def refusal(self) -> str:
        """The one line a refused node is told (no reason text: that stays with staff)."""
        return (
            f"the certificate of {self.code} was revoked by the district on {iso(self.revoked_at)[:19]}: "
            "this node is refused everywhere; " + REENROLL.format(code=self.code)
        )

    def upstream_refusal(self, target: str) -> str:
        """The one line a node is told when its upstream serves with a revoked certificate."""
        return (
            f"the upstream {self.code} at {target} serves with a certificate the district revoked "
            f"on {iso(self.revoked_at)[:19]} (a stolen server?): this node will not talk to it; "
            f"ask the district which server now serves {self.code}, and point this node at it "
            "('upstream' in node.toml, as 'init --township' sets it)"
        )


async def covering(engine: AsyncEngine, code: str, issued_us: int) -> Revocation | None:
    """The revocation kept here that refuses a certificate of ``code`` issued at ``issued_us``."""
    async with reading(engine) as conn:
        revoked = await find(conn, code)
    return revoked if revoked is not None and revoked.refuses(issued_us) else None


async def revoke(conn: AsyncConnection, code: str, reason: str, now: int) -> Revocation:
    """Revoke every certificate of ``code`` issued until now (the district's `revoke`). The
    moment is later than any kept, so nodes pulling by it never miss one."""
    newest = await newest_time(conn)
    revocation = Revocation(code, max(now, newest + 1), reason)
    await _put(conn, revocation)
    return revocation


async def find(conn: AsyncConnection, code: str) -> Revocation | None:
    row = (await conn.execute(select(revocations).where(revocations.c.code == code))).first()
    return Revocation(row.code, row.revoked_at, row.reason) if row else None


async def newest_time(conn: AsyncConnection) -> int:
    return (await conn.execute(select(func.max(revocations.c.revoked_at)))).scalar() or 0


async def after(conn: AsyncConnection, moment: int) -> list[Revocation]:
    """The revocations made after ``moment``, oldest first, one page."""
    rows = await conn.execute(
        select(revocations)
        .where(revocations.c.revoked_at > moment)
        .order_by(revocations.c.revoked_at)
        .limit(PAGE)
    )
    return [Revocation(row.code, row.revoked_at, row.reason) for row in rows]


async def keep(conn: AsyncConnection, pulled: Sequence[Revocation]) -> None:
    """Keep revocations pulled from the upstream (a later one of a code replaces the earlier),
    without any reason text (an older district sent it along)."""
    for revocation in (replace(r, reason="") for r in pulled):
        kept = await find(conn, revocation.code)
        if kept is None or kept.revoked_at < revocation.revoked_at:
            await _put(conn, revocation)


async def _put(conn: AsyncConnection, revocation: Revocation) -> None:
    values = {"revoked_at": revocation.revoked_at, "reason": revocation.reason[:500]}
    await put_row(conn, revocations, "code", revocation.code, values)
