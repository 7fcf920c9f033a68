"""A node's configuration: ``node.toml`` in its home folder, written by ``init``."""

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tenacity import stop_after_delay, stop_never, wait_exponential_jitter

from casework import InvalidInput
from relay.pki import CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, finish_pair
from relay.tls import INSECURE_LOOPBACK, Credentials, Security, require_loopback

CONFIG_FILE = "node.toml"
DB_FILE = "node.db"


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """How a node talks to its upstream."""

    batch_size: int = 1000  # events per push (the protocol's largest batch)
    push_timeout_seconds: float = 10.0  # deadline of one push or pull call
    poll_interval_seconds: float = 0.1  # how often an idle forwarder looks for new commits
    retention_days: float = 30.0  # acknowledged outbox rows kept for replay to a restored upstream
    # A village forgets a settled case's personal data this long after its events were
    # acknowledged: a township restored from a backup up to this old gets them replayed whole.
    forget_after_days: float = 7.0
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0  # a link back after an outage is used within seconds
    # As a server: calls each node below may make a second on average, and in a row; a node
    # calling faster gets RESOURCE_EXHAUSTED (it backs off and retries). 0: no limit.
    peer_calls_per_second: float = 100.0
    peer_call_burst: int = 200

    def tenacity_kwargs(self, give_up_after: float | None = None) -> dict[str, Any]:
        """Exponential backoff with jitter; never give up unless a time budget is set."""
        return {
            "wait": wait_exponential_jitter(
                multiplier=self.backoff_initial_seconds,
                max=self.backoff_max_seconds,
                jitter=self.backoff_initial_seconds * 5,
            ),
            "stop": stop_never if give_up_after is None else stop_after_delay(give_up_after),
            "reraise": True,
        }


@dataclass(frozen=True, slots=True)
class TLSConfig:
    """How this node secures its links: mutual TLS with the key and certificates its
    enrollment gave it (paths relative to its home), unless plaintext is asked for."""

    key_file: str = NODE_KEY_FILE  # this node's private key (mode 0600)
    cert_file: str = NODE_CERT_FILE  # this node's certificate: identity = division code + role
    ca_file: str = CA_CERT_FILE  # the network's CA certificate: the only one trusted
    # Plaintext, for tests on one machine only: refused unless every address is a loopback one.
    insecure_loopback: bool = False

    def security(self, home: Path, *addresses: tuple[str, str]) -> Security:
        """The credentials to serve or dial with; with insecure_loopback, plaintext after
        checking that each (what, HOST:PORT) of ``addresses`` is a loopback address."""
        if self.insecure_loopback:
            for what, address in addresses:
                require_loopback(address, what)
            return INSECURE_LOOPBACK
        finish_pair(home / self.key_file, home / self.cert_file)  # a renewal cut short by a crash
        return self.credentials(home)

    def credentials(self, home: Path) -> Credentials:
        """The key and certificates as the files hold them now."""
        return Credentials.load(home, self.key_file, self.cert_file, self.ca_file)


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Who this node is and whom it talks to."""

    code: str  # division code of this node
    role: str  # "district", "township" or "village"
    name: str
    district_code: str
    db_url: str
    operator: str = ""  # staff member recorded when a staff command names nobody
    upstream: str = ""  # HOST:PORT of the upstream's server; empty on the district
    upstream_code: str = ""
    rectify_days: int = 15  # working days the owner has to rectify a bad review or complaint
    relay: RelayPolicy = field(default_factory=RelayPolicy)
    tls: TLSConfig = field(default_factory=TLSConfig)  # [tls]: absent in configs made before it

    def save(self, home: Path) -> None:
        values = asdict(self)
        tables = {name: values.pop(name) for name in ("relay", "tls")}
        lines = [f"{key} = {_toml(value)}" for key, value in values.items()]
        for name, table in tables.items():
            lines += ["", f"[{name}]"] + [f"{key} = {_toml(value)}" for key, value in table.items()]
        (home / CONFIG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = home / CONFIG_FILE
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            said = f"no node in {home}: run 'init' first (or pass --home)"
            raise InvalidInput(said, "no_node", home=str(home)) from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(
                f"{path} is not valid TOML: {exc}", "bad_toml", path=str(path), reason=str(exc)
            ) from exc
        try:
            relay = RelayPolicy(**values.pop("relay", {}))
            tls = TLSConfig(**values.pop("tls", {}))
            return cls(**values, relay=relay, tls=tls)
        except TypeError as exc:
            raise InvalidInput(f"{path}: {exc}", "bad_settings", path=str(path), reason=str(exc)) from exc


def default_db_url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{(home / DB_FILE).resolve().as_posix()}"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
