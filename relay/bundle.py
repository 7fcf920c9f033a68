"""Enrollment bundles: one file that holds everything a node needs to join the network."""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from casework import InvalidInput

FORMAT = "servicenet-bundle/1"


@dataclass(frozen=True, slots=True)
class Bundle:
    code: str  # the enrolled node's division code
    role: str  # "township" or "village"
    name: str
    district_code: str
    upstream_code: str  # the node it dials: the district for a township, its township for a village
    upstream_name: str

    def write(self, path: Path) -> None:
        path.write_text(
            json.dumps({"format": FORMAT, **asdict(self)}, ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def read(cls, path: Path, role: str) -> "Bundle":
        """Read a bundle made for a node of ``role``; InvalidInput says what is wrong."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InvalidInput(f"cannot read bundle {path}: {exc.strerror}") from exc
        except ValueError as exc:
            raise InvalidInput(f"{path} is not an enrollment bundle (not JSON)") from exc
        if not isinstance(data, dict) or data.pop("format", None) != FORMAT:
            raise InvalidInput(f"{path} is not a {FORMAT} enrollment bundle")
        try:
            bundle = cls(**data)
        except TypeError as exc:
            raise InvalidInput(f"{path}: enrollment bundle is incomplete ({exc})") from exc
        if bundle.role != role:
            raise InvalidInput(f"{path} enrolls a {bundle.role}, not a {role}: ask for the right bundle")
        return bundle
