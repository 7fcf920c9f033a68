"""Where a node keeps personal data: in clear on the township and district servers (``Vault``),
sealed with AES-GCM under the village's data key on a village laptop (``SealedVault``).

On a village, every event payload is sealed (its case number and event id are the associated
data, so a sealed value cannot be moved to another row), and the applicant's name, ID number
and phone are kept in one sealed column of the case (the clear columns stay empty). Rows are
sealed as they are written and opened as they are read; what travels upstream is opened when a
batch is built and goes over mutual TLS.

The scans and photos of materials handed in through the village's intake app are kept sealed
too, in ``scans/`` in the node's home (0700, files 0600) under the SHA-256 of what was handed
in, which is their associated data: a file is kept once however often it is handed in, is on
disk (fsync) before the case that names it is recorded, and is deleted when the village forgets
the last case naming it (relay.privacy).
"""

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from relay.errors import PermanentError
from relay.pki import sync_folder, write_secret

SEALED = b"\x01"  # first byte of a sealed payload; a clear one is a JSON object: "{"
SCANS = "scans"  # the folder of a village's sealed scans, in its home
_NONCE = 12


@dataclass(frozen=True, slots=True)
class Applicant:
    name: str
    id_number: str
    phone: str


class Vault:
    """Personal data kept as it is (township and district servers)."""

    sealing = False

    def seal_events(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows

    def seal_cases(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return rows

    def open_payload(self, case_id: str, event_id: str, payload: bytes) -> bytes:
        return payload

    def applicant(self, row: Any) -> Applicant:
        """The applicant of a case row (empty once a village has forgotten them)."""
        return Applicant(row.applicant_name, row.applicant_id, row.phone)

    def drop_scans(self, digests: Iterable[str]) -> None:
        """Delete kept scans (a village's; servers keep none)."""


class SealedVault(Vault):
    """Personal data sealed under a village's data key."""

    sealing = True

    def __init__(self, key: bytes, home: Path | None = None) -> None:
        self._aead = AESGCM(key)
        self._scans = home / SCANS if home is not None else None
        # Names the key without revealing it: the database records which key sealed it.
        self.key_id = hashlib.sha256(b"servicenet key id\0" + key).hexdigest()[:16]

    def seal_events(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            row | {"payload": self.seal_payload(row["case_id"], row["event_id"], row["payload"])}
            for row in rows
        ]

    def seal_payload(self, case_id: str, event_id: str, payload: bytes) -> bytes:
        if payload.startswith(SEALED):
            return payload
        return SEALED + self._seal(payload, _event_aad(case_id, event_id))

    def open_payload(self, case_id: str, event_id: str, payload: bytes) -> bytes:
        if not payload.startswith(SEALED):
            return payload  # forgotten (relay.privacy: kept in clear), or not yet sealed
        return self._open(payload[1:], _event_aad(case_id, event_id), f"event {event_id}")

    def seal_cases(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row | self.sealed_applicant(row) for row in rows]

    def sealed_applicant(self, row: dict[str, Any]) -> dict[str, Any]:
        """The columns that hold a case's applicant on a village: one sealed, three empty."""
        clear = [row["applicant_name"], row["applicant_id"], row["phone"]]
        sealed = self._seal(json.dumps(clear, ensure_ascii=False).encode(), _case_aad(row["case_id"]))
        return {"applicant_sealed": sealed, "applicant_name": "", "applicant_id": "", "phone": ""}

    def applicant(self, row: Any) -> Applicant:
        if row.applicant_sealed is None:
            return super().applicant(row)
        opened = self._open(row.applicant_sealed, _case_aad(row.case_id), f"case {row.case_id}")
        name, id_number, phone = json.loads(opened)
        return Applicant(name, id_number, phone)

    def keep_scan(self, data: bytes) -> str:
        """Keep a scan sealed (unless it is already); returns its SHA-256 (hex)."""
        digest = hashlib.sha256(data).hexdigest()
        path = self._scan_path(digest)
        if not path.exists():
            path.parent.mkdir(mode=0o700, exist_ok=True)
            write_secret(path, self._seal(data, _scan_aad(digest)))
        return digest

    def open_scan(self, digest: str) -> bytes:
        """A kept scan as it was handed in."""
        return self._open(self._scan_path(digest).read_bytes(), _scan_aad(digest), f"scan {digest[:12]}")

    def drop_scans(self, digests: Iterable[str]) -> None:
        dropped = [self._scan_path(d) for d in digests]
        for path in dropped:
            path.unlink(missing_ok=True)
        if dropped and dropped[0].parent.exists():
            sync_folder(dropped[0].parent)

    def _scan_path(self, digest: str) -> Path:
        assert self._scans is not None, "a vault keeping scans knows the node's home"
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError("a scan is named by its SHA-256 in hex")
        return self._scans / digest

    def _seal(self, data: bytes, aad: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def _open(self, sealed: bytes, aad: bytes, what: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)
        except InvalidTag as exc:
            raise PermanentError(
                f"{what} cannot be opened with this village's data key: the database was altered"
            ) from exc


def _event_aad(case_id: str, event_id: str) -> bytes:
    return f"event\0{case_id}\0{event_id}".encode()


def _case_aad(case_id: str) -> bytes:
    return f"case\0{case_id}".encode()


def _scan_aad(digest: str) -> bytes:
    return bytes.fromhex(digest)
