"""Regenerate the Python code of the wire contract from protos/v1/*.proto.

Run from anywhere: ``python scripts/gen_protos.py [OUT_ROOT]``. The generated modules are
committed; tests/test_protos_drift.py regenerates them into a temporary folder and fails if
they differ from the committed ones.
"""

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent


def generate(out_root: Path) -> None:
    """Write relay_pb2.py, relay_pb2.pyi and relay_pb2_grpc.py below out_root/protos/v1."""
    (out_root / "protos" / "v1").mkdir(parents=True, exist_ok=True)
    well_known = Path(protoc.__file__).parent / "_proto"
    for proto in sorted((ROOT / "protos" / "v1").glob("*.proto")):
        args = [
            "protoc",
            f"-I{ROOT}",
            f"-I{well_known}",
            f"--python_out={out_root}",
            f"--pyi_out={out_root}",
            f"--grpc_python_out={out_root}",
            str(proto),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
