"""A node's configuration: ``node.toml`` in its home folder, written by ``init``."""

import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tenacity import stop_after_delay, stop_never, wait_exponential_jitter

from casework import InvalidInput

CONFIG_FILE = "node.toml"
DB_FILE = "node.db"


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    """How a node talks to its upstream."""

    batch_size: int = 1000  # events per push (the protocol's largest batch)
    push_timeout_seconds: float = 10.0  # deadline of one push or pull call
    poll_interval_seconds: float = 0.1  # how often an idle forwarder looks at the outbox
    retention_days: float = 30.0  # acknowledged outbox rows kept for replay to a restored upstream
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 5.0  # a link back after an outage is used within seconds

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

    def save(self, home: Path) -> None:
        values = asdict(self)
        relay = values.pop("relay")
        lines = [f"{key} = {_toml(value)}" for key, value in values.items()]
        lines += ["", "[relay]"] + [f"{key} = {_toml(value)}" for key, value in relay.items()]
        (home / CONFIG_FILE).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, home: Path) -> "NodeConfig":
        path = home / CONFIG_FILE
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise InvalidInput(f"no node in {home}: run 'init' first (or pass --home)") from exc
        except tomllib.TOMLDecodeError as exc:
            raise InvalidInput(f"{path} is not valid TOML: {exc}") from exc
        relay = RelayPolicy(**values.pop("relay", {}))
        try:
            return cls(**values, relay=relay)
        except TypeError as exc:
            raise InvalidInput(f"{path}: {exc}") from exc


def default_db_url(home: Path) -> str:
    return f"sqlite+aiosqlite:///{(home / DB_FILE).resolve().as_posix()}"


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)
