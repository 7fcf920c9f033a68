"""A real network for end-to-end tests: nodes made and driven through their command lines,
servers as real subprocesses on loopback ports. Every link is mutual TLS, with the
certificates ``district-node enroll`` issued, as in a real deployment."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from relay.config import NodeConfig
from relay.tls import Credentials, channel_options

DIVISIONS = Path(__file__).resolve().parent.parent / "casework" / "data" / "hechuan-500117.csv"
TOOLS = {"district": "district_node", "township": "township_node", "village": "village_agent"}
# Valid resident ID numbers (GB 11643 check digits) for sample applicants.
IDS = ("500117195603124322", "500117197811052166", "500117200108230041", "11010519491231002X")


_QUICK_RECONNECT = [("grpc.initial_reconnect_backoff_ms", 50), ("grpc.max_reconnect_backoff_ms", 100)]


_GIVEN: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before by this process: the kernel may offer the
    same free port twice before either server binds it, and a server refuses a port in use."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port


def channel_to(
    address: str, home: Path | None = None, options: list[tuple[str, Any]] | None = None
) -> grpc.Channel:
    """A blocking channel to the server of the node in ``home``, secured as that node's
    config says (mutual TLS with the node's own certificate, checking the server is that
    node); plaintext where no home is given."""
    options = list(options or [])
    if home is None:
        return grpc.insecure_channel(address, options=options)
    config = NodeConfig.load(home)
    security = config.tls.security(home)
    if not isinstance(security, Credentials):
        return grpc.insecure_channel(address, options=options)
    options += channel_options(config.code)
    return grpc.secure_channel(address, security.channel_credentials(), options=options)


def wait_serving(address: str, timeout: float = 20.0, home: Path | None = None) -> None:
    """Block until the server at address answers the standard gRPC health check; ``home`` is
    the serving node's folder (its certificate opens the mutual-TLS connection)."""
    deadline = time.monotonic() + timeout
    # Retry the connection every 50 ms rather than after gRPC's default backoff of a second.
    with channel_to(address, home, _QUICK_RECONNECT) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no server at {address} after {timeout}s")
            time.sleep(0.05)


class Network:
    """Homes under one folder, one district; townships and villages added by code."""

    def __init__(self, root: Path, district_db: str | None = None) -> None:
        self.root = root
        self.ports: dict[str, int] = {}
        self.servers: dict[str, subprocess.Popen[bytes]] = {}
        self.role: dict[str, str] = {}
        self.command_errors: list[bytes] = []  # what every command run wrote on stderr
        args = ["init", "--code", "500117", "--divisions", str(DIVISIONS)]
        self.cli("district", "500117", *args, *(["--db", district_db] if district_db else []))
        self.role["500117"] = "district"
        self.ports["500117"] = free_port()

    def copy(self, root: Path) -> "Network":
        """These homes (and bundles) copied under ``root``, each server given a port of its
        own, as if they had been made there: a test's network in a file copy's time instead
        of five commands'. None of this network's servers may be running."""
        assert not self.servers, "copying homes while their servers write to them"
        shutil.copytree(self.root, root, dirs_exist_ok=True)
        copied = object.__new__(Network)
        copied.root, copied.role, copied.servers, copied.command_errors = root, dict(self.role), {}, []
        copied.ports = {code: free_port() for code in self.ports}
        for code in self.role:
            settings = copied.home(code) / "node.toml"
            text = settings.read_text(encoding="utf-8").replace(str(self.root), str(root))
            for server, port in self.ports.items():
                text = text.replace(f'"127.0.0.1:{port}"', f'"{copied.address(server)}"')
            settings.write_text(text, encoding="utf-8")
        return copied

    def home(self, code: str) -> Path:
        return self.root / code

    def address(self, code: str) -> str:
        return f"127.0.0.1:{self.ports[code]}"

    def add(self, code: str, batch_size: int | None = None, upstream: str | None = None) -> None:
        """Enroll a township or village at the district and initialise its node. ``upstream``
        (HOST:PORT) replaces the address of its upstream's server, e.g. with a proxy's."""
        bundle = self.root / f"{code}.bundle"
        enrolled = self.cli("district", "500117", "enroll", "--code", code, "--out", str(bundle), "--json")
        role, parent = enrolled["role"], code[:9] if enrolled["role"] == "village" else "500117"
        flag = "--district" if role == "township" else "--township"
        self.role[code] = role
        if role == "township":
            self.ports[code] = free_port()
        self.cli(role, code, "init", "--bundle", str(bundle), flag, upstream or self.address(parent))
        if batch_size:
            self.set_relay(code, batch_size=batch_size)

    def set_relay(self, code: str, **values: float) -> None:
        """Change [relay] settings in a node's node.toml (e.g. push_timeout_seconds=2)."""
        config = self.home(code) / "node.toml"
        lines = config.read_text(encoding="utf-8").splitlines()
        start = lines.index("[relay]")
        for key, value in values.items():
            found = [i for i in range(start + 1, len(lines)) if lines[i].split(" = ")[0] == key]
            if not found:
                raise KeyError(f"no [relay] setting {key} in {config}")
            lines[found[0]] = f"{key} = {value!r}"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def spawn(self, code: str, *args: str, stdout: Path, stderr: Path) -> subprocess.Popen[bytes]:
        """Start a node's command without waiting for it; its output goes to the two files."""
        role = self.role[code]
        command = [sys.executable, "-m", TOOLS[role], *args, "--home", str(self.home(code))]
        with stdout.open("ab") as out, stderr.open("ab") as err:
            return subprocess.Popen(command, stdout=out, stderr=err, env=_env())

    def cli(
        self,
        role: str,
        code: str,
        *args: str,
        check: bool = True,
        timeout: float = 120,
        env: dict[str, str] | None = None,
        input: bytes | None = None,
    ) -> Any:
        """Run a node's command; returns parsed JSON when --json is given, else the process.
        ``env`` adds environment variables, e.g. {"SERVICENET_TODAY": "2026-12-21"}; ``input``
        is its standard input."""
        command = [sys.executable, "-m", TOOLS[role], *args, "--home", str(self.home(code))]
        done = subprocess.run(
            command, capture_output=True, timeout=timeout, env=_env() | (env or {}), input=input
        )
        self.command_errors.append(done.stderr)
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.decode()}")
        if "--json" in args and done.returncode == 0:
            return json.loads(done.stdout)
        return done

    def node(self, code: str, *args: str, **kwargs: Any) -> Any:
        return self.cli(self.role[code], code, *args, **kwargs)

    def start(self, code: str, *extra: str, env: dict[str, str] | None = None) -> None:
        """Start a district or township server and wait until it is serving. ``extra`` adds
        options (e.g. "--http", "127.0.0.1:8080"), ``env`` environment variables."""
        command = [sys.executable, "-m", TOOLS[self.role[code]], "serve", "--home", str(self.home(code))]
        with (self.root / f"{code}.log").open("ab") as log:
            self.servers[code] = subprocess.Popen(
                [*command, "--listen", self.address(code), *extra],
                stdout=log,
                stderr=log,
                env=_env() | (env or {}),
            )
        wait_serving(self.address(code), home=self.home(code))

    def kill(self, code: str, sig: int = signal.SIGKILL) -> int:
        process = self.servers.pop(code)
        process.send_signal(sig)
        return process.wait(timeout=30)

    def stop_all(self) -> None:
        for code in list(self.servers):
            self.kill(code, signal.SIGTERM)

    def cases(self, code: str) -> list[dict[str, Any]]:
        return list(self.node(code, "cases", "--json"))

    def sync(self, code: str, timeout: float = 30) -> dict[str, int]:
        return dict(self.node(code, "sync", "--timeout", str(timeout), "--json"))

    def log_text(self) -> str:
        """The servers' logs and what every command wrote on stderr."""
        servers = "".join(p.read_text(encoding="utf-8", errors="replace") for p in self.root.glob("*.log"))
        return servers + b"".join(self.command_errors).decode(errors="replace")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("SERVICENET_HOME", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def requests_file(path: Path, count: int, item: str = "twp-pension-enroll") -> Path:
    """A JSON Lines file of ``count`` valid requests (an enrollment drive)."""
    lines = (
        json.dumps(
            {
                "item": item,
                "applicant_name": f"村民{n}",
                "applicant_id": IDS[n % len(IDS)],
                "phone": "13800000000",
            },
            ensure_ascii=False,
        )
        for n in range(count)
    )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
