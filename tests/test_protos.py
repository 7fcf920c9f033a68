"""The committed wire code matches protos/v1."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("grpc_tools") is None, reason="grpcio-tools not installed")
def test_generated_code_matches_proto(tmp_path: Path) -> None:
    """Regenerating from the .proto gives exactly the committed modules (no drift)."""
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), str(tmp_path)], check=True)
    for generated in sorted((tmp_path / "protos" / "v1").iterdir()):
        committed = ROOT / "protos" / "v1" / generated.name
        assert committed.read_text() == generated.read_text(), f"{generated.name} is stale: run make protos"
