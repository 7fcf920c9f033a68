"""Who may read the dashboard: staff of the management office with a password, kept in the
district's home as salted scrypt hashes (``web-users.json``, mode 0600), and the signed session
cookie a login gives them.

A file rather than a table: the accounts belong to this web page, not to the relay, and need
no migration. A session cookie is ``name.expiry.mac``: the MAC (HMAC-SHA256 with a random
secret kept in ``web-secret`` in the home) covers the user's current salt too, so setting a new
password or removing the user ends the sessions it had; deleting ``web-secret`` ends them all.
"""

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from casework import InvalidInput
from relay.clock import iso, now_us

USERS_FILE = "web-users.json"
SECRET_FILE = "web-secret"
MIN_PASSWORD = 8
MAX_NAME = 64
SESSION_SECONDS = 8 * 3600  # one working day
# scrypt with 16 MiB of memory: about 50 ms a check, costly to guess at scale
SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True, slots=True)
class Session:
    name: str
    expires: int  # seconds since the epoch


def add_user(home: Path, name: str, password: str) -> bool:
    """Set a user's password, adding the user if new; returns True if the user was new."""
    name = check_name(name)
    if len(password) < MIN_PASSWORD:
        said = f"the password must have at least {MIN_PASSWORD} characters"
        raise InvalidInput(said, "short_password", n=MIN_PASSWORD)
    users = _load(home)
    salt = secrets.token_bytes(16)
    new = name not in users
    users[name] = {
        "scrypt": SCRYPT,
        "salt": salt.hex(),
        "hash": _hash(password, salt, SCRYPT).hex(),
        "set_at": iso(now_us()),
    }
    _write_private(home / USERS_FILE, json.dumps({"users": users}, ensure_ascii=False, indent=1))
    return new


def remove_user(home: Path, name: str) -> None:
    users = _load(home)
    if users.pop(name, None) is None:
        raise InvalidInput(f"no web user {name!r}: see 'web-user list'", "no_web_user", name=name)
    _write_private(home / USERS_FILE, json.dumps({"users": users}, ensure_ascii=False, indent=1))


def list_users(home: Path) -> list[dict[str, str]]:
    """Each user's name, when their password was set, and how the logs name them."""
    secret = session_secret(home)
    return [
        {"name": name, "set_at": entry.get("set_at", ""), "log_ref": log_ref(secret, name)}
        for name, entry in sorted(_load(home).items())
    ]


def log_ref(secret: bytes, name: str) -> str:
    """How the logs name a web user: staff names are personal data, so never the name but a
    keyed hash of it, the same for every sign-in as long as ``web-secret`` is kept (and for a
    name no user has, so repeated guesses show). ``web-user list --json`` maps them back."""
    return "u-" + hmac.new(secret, f"log.{name}".encode(), hashlib.sha256).hexdigest()[:12]


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise InvalidInput(
            f"a web user's name is 1 to {MAX_NAME} printable characters", "web_user_name", n=MAX_NAME
        )
    return name


def verify(home: Path, name: str, password: str) -> bool:
    """Whether the password is this user's. Takes the same time for an unknown user."""
    entry = _load(home).get(name)
    if entry is None:
        _hash(password, b"\0" * 16, SCRYPT)
        return False
    expected = bytes.fromhex(entry["hash"])
    return hmac.compare_digest(_hash(password, bytes.fromhex(entry["salt"]), entry["scrypt"]), expected)


def session_secret(home: Path) -> bytes:
    """The key session cookies are signed with; made on first use."""
    path = home / SECRET_FILE
    if not path.exists():
        _write_private(path, secrets.token_hex(32), exclusive=True)
    return bytes.fromhex(path.read_text(encoding="ascii").strip())


def issue(home: Path, secret: bytes, name: str, now: int) -> str:
    """A cookie value for a user who just logged in."""
    label = base64.urlsafe_b64encode(name.encode()).decode().rstrip("=")
    expires = now + SESSION_SECONDS
    return f"{label}.{expires}.{_mac(secret, label, expires, _salt(home, name))}"


def check(home: Path, secret: bytes, cookie: str | None, now: int) -> Session | None:
    """The session a cookie carries, if its signature holds, it has not expired and its user
    still has the same password."""
    if not cookie or cookie.count(".") != 2:
        return None
    label, expires_text, mac = cookie.split(".")
    if not expires_text.isdigit() or int(expires_text) < now:
        return None
    try:
        name = base64.urlsafe_b64decode(label + "=" * (-len(label) % 4)).decode()
    except (binascii.Error, ValueError):
        return None
    salt = _salt(home, name)
    if not salt or not hmac.compare_digest(_mac(secret, label, int(expires_text), salt), mac):
        return None
    return Session(name, int(expires_text))


def _salt(home: Path, name: str) -> str:
    entry = _load(home).get(name)
    return str(entry["salt"]) if entry else ""


def _mac(secret: bytes, label: str, expires: int, salt: str) -> str:
    return hmac.new(secret, f"{label}.{expires}.{salt}".encode(), hashlib.sha256).hexdigest()


def _hash(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["n"], params["r"], params["p"]
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=32)


def _load(home: Path) -> dict[str, Any]:
    path = home / USERS_FILE
    try:
        users = json.loads(path.read_text(encoding="utf-8")).get("users", {})
    except FileNotFoundError:
        return {}
    except (ValueError, AttributeError) as exc:
        said = f"{path} is damaged: fix or remove it, then add the users again"
        raise InvalidInput(said, "web_users_damaged", path=str(path)) from exc
    return dict(users)


def _write_private(path: Path, content: str, exclusive: bool = False) -> None:
    """Write a file only its owner can read, whole or not at all."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.unlink(missing_ok=True)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    if exclusive and path.exists():  # another process made it meanwhile: keep theirs
        temporary.unlink()
        return
    os.replace(temporary, path)
