"""A village's data key, kept apart from its database: ``data.key`` in the node's home, the
random 256-bit key wrapped (AES-GCM) with a key that scrypt derives from the agent's passphrase.

The passphrase comes from SERVICENET_PASSPHRASE (scripts, services, tests) or is typed at the
terminal. A stolen database alone reveals nobody; the key file alone is useless without the
passphrase, and each guess at it costs a 32 MiB scrypt.
"""

import base64
import getpass
import json
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from casework import InvalidInput
from messages import t
from relay.pki import write_secret

KEY_FILE = "data.key"
PASSPHRASE_ENV = "SERVICENET_PASSPHRASE"
BACKUP_SUFFIX = ".bak"  # the key file as it was before a passphrase change, until the next open
NEW_PASSPHRASE_ENV = "SERVICENET_NEW_PASSPHRASE"  # for 'village-agent passphrase' in scripts
MIN_PASSPHRASE = 8
# scrypt's cost: 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s, once per process. The file
# records the parameters, so a later release may raise them for new keys.
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
_WRAPPING = b"servicenet data key v1"  # associated data of the wrapped key
_typed: dict[str, str] = {}  # the passphrase typed in this process


class WrongPassphrase(InvalidInput):
    """The passphrase does not open the data key."""


def load_key(home: Path) -> bytes:
    """The data key in ``home``, unwrapped with the agent's passphrase. The copy a passphrase
    change kept (BACKUP_SUFFIX) is dropped once the key opens."""
    path = home / KEY_FILE
    damaged = f"{path} cannot be read as a data key file: restore it from the backup"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        params = {name: int(stored[name]) for name in SCRYPT}
        salt, nonce, wrapped = (_unb64(stored[name]) for name in ("salt", "nonce", "wrapped"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(damaged, "key_damaged", file=path) from exc
    wrapping = _derive(_passphrase(), salt, **params)
    try:
        key = AESGCM(wrapping).decrypt(nonce, wrapped, _WRAPPING)
    except InvalidTag as exc:
        raise WrongPassphrase(
            f"wrong passphrase for this village's data key ({path}): "
            f"type it again, or correct {PASSPHRASE_ENV}",
            "wrong_passphrase",
            file=path,
            env=PASSPHRASE_ENV,
        ) from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a nonce or salt of the wrong size
        raise InvalidInput(damaged, "key_damaged", file=path) from exc
    path.with_name(KEY_FILE + BACKUP_SUFFIX).unlink(missing_ok=True)
    return key


def create_key(home: Path) -> bytes:
    """A new random data key, kept in ``home`` wrapped with a passphrase chosen now."""
    passphrase = _passphrase(new=True)
    key = AESGCM.generate_key(bit_length=256)
    try:
        _store(home, key, passphrase, replace=False)
    except FileExistsError as exc:
        raise InvalidInput(
            f"another command made {home / KEY_FILE} at the same moment: run this one again",
            "key_race",
            file=home / KEY_FILE,
        ) from exc
    return key


def change_passphrase(home: Path) -> None:
    """Wrap the data key with a new passphrase (from NEW_PASSPHRASE_ENV, or typed twice); the
    data itself stays as it is. The file as it was is kept beside it (BACKUP_SUFFIX) until the
    key next opens, in case the new passphrase is lost at once."""
    key = load_key(home)
    passphrase = _passphrase(new=True, env=NEW_PASSPHRASE_ENV)
    path = home / KEY_FILE
    write_secret(path.with_name(KEY_FILE + BACKUP_SUFFIX), path.read_bytes())
    _store(home, key, passphrase)


def _store(home: Path, key: bytes, passphrase: str, replace: bool = True) -> None:
    salt, nonce = os.urandom(16), os.urandom(12)
    wrapped = AESGCM(_derive(passphrase, salt, **SCRYPT)).encrypt(nonce, key, _WRAPPING)
    stored: dict[str, Any] = {"format": 1, "kdf": "scrypt", **SCRYPT}
    stored |= {"salt": _b64(salt), "nonce": _b64(nonce), "wrapped": _b64(wrapped)}
    write_secret(home / KEY_FILE, (json.dumps(stored, indent=1) + "\n").encode(), replace)


@lru_cache(maxsize=16)
def _derive(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    """The key-wrapping key; cached, so a process derives it once however often it opens."""
    try:
        return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode())
    except (ValueError, MemoryError) as exc:
        said = f"the data key file asks for a scrypt cost this machine cannot meet ({n}, {r}, {p})"
        raise InvalidInput(said, "scrypt_cost", cost=f"{n}, {r}, {p}") from exc


def _passphrase(new: bool = False, env: str = PASSPHRASE_ENV) -> str:
    """From the environment, else typed at the terminal (twice for a new one); one typed is
    remembered for the rest of the process (``init`` makes the key, then opens the node)."""
    given = os.environ.get(env) or (None if new else _typed.get(PASSPHRASE_ENV))  # empty: not set
    if given is None:
        if not sys.stdin.isatty():
            raise InvalidInput(
                f"this village's personal data is encrypted: run the command at a terminal to type "
                f"its {'new ' if new else ''}passphrase, or set {env}",
                "passphrase_terminal",
                env=env,
            )
        given = getpass.getpass(t("cli.passphrase.new") if new else t("cli.passphrase.ask"))
        if new and getpass.getpass(t("cli.passphrase.again")) != given:
            raise InvalidInput("the two passphrases differ: run the command again", "passphrases_differ")
    if new and len(given) < MIN_PASSPHRASE:
        raise InvalidInput(
            f"the passphrase must be at least {MIN_PASSPHRASE} characters long",
            "passphrase_short",
            n=MIN_PASSPHRASE,
        )
    if env not in os.environ:
        _typed[PASSPHRASE_ENV] = given  # the one that opens the key file from now on
    return given


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)
