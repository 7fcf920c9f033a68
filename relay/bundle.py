"""Enrollment bundles: one file that holds everything a node needs to join the network.

A bundle is secret (it holds the node's private key): it is written with mode 0600 and should
travel only over a safe channel. Format 2 adds the node's key and certificate and the CA
certificate (PEM) to format 1, which is still read (a node made from it can only run with
``insecure_loopback``)."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from casework import InvalidInput
from relay.pki import write_secret

FORMAT = "servicenet-bundle/2"
FORMATS = ("servicenet-bundle/1", FORMAT)


@dataclass(frozen=True, slots=True)
class Bundle:
    code: str  # the enrolled node's division code
    role: str  # "township" or "village"
    name: str
    district_code: str
    upstream_code: str  # the node it dials: the district for a township, its township for a village
    upstream_name: str
    key: str = ""  # the node's private key (PEM); empty in a format 1 bundle
    certificate: str = ""  # the node's certificate, signed by the CA (PEM)
    ca_certificate: str = ""  # the network's CA certificate (PEM)

    @property
    def has_credentials(self) -> bool:
        return bool(self.key and self.certificate and self.ca_certificate)

    def to_json(self) -> bytes:
        text = json.dumps({"format": FORMAT, **asdict(self)}, ensure_ascii=False, indent=1)
        return text.encode("utf-8")

    def write(self, path: Path) -> None:
        """Write the bundle whole, readable by its owner only."""
        write_secret(path, self.to_json())

    @classmethod
    def read(cls, path: Path, role: str) -> "Bundle":
        """Read a bundle made for a node of ``role``; InvalidInput says what is wrong."""
        try:
            text = path.read_bytes()
        except OSError as exc:
            said = f"cannot read bundle {path}: {exc.strerror}"
            raise InvalidInput(said, "bundle_unreadable", path=str(path), reason=exc.strerror) from exc
        return cls.parse(text, str(path), role)

    @classmethod
    def parse(cls, text: bytes, source: str, role: str) -> "Bundle":
        """A bundle from its JSON (``source`` names where it came from in errors)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(
                f"{source} is not an enrollment bundle (not JSON)", "not_bundle", source=source
            ) from exc
        if not isinstance(data, dict) or data.pop("format", None) not in FORMATS:
            raise InvalidInput(
                f"{source} is not a {FORMAT} enrollment bundle", "bundle_format", source=source
            )
        try:
            bundle = cls(**data)
        except TypeError as exc:
            said = f"{source}: enrollment bundle is incomplete ({exc})"
            raise InvalidInput(said, "bundle_incomplete", source=source, reason=str(exc)) from exc
        if bundle.role != role:
            said = f"{source} enrolls a {bundle.role}, not a {role}: ask for the right bundle"
            raise InvalidInput(said, "bundle_level", source=source, level=bundle.role, wanted_level=role)
        return bundle
