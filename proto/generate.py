"""Regenerate the ``*_pb2.py`` / ``*_pb2.pyi`` modules from ``proto/*.proto``.

Run from the repository root::

    python proto/generate.py

The ``.proto`` files import each other as ``summaryd/proto/<name>.proto`` so
that the generated modules import each other as ``from summaryd.proto import
<name>_pb2``. protoc's virtual path mapping (``-Isummaryd/proto=<this dir>``)
provides that prefix without any ``summaryd/proto`` directory on disk.

protoc runs in a subprocess (``python -m grpc_tools.protoc``): that entry point
adds grpcio-tools' bundled well-known types (``google/protobuf/struct.proto``)
to the include path, and importing ``grpc_tools.protoc`` in-process would
install its dynamic ``.proto`` import hooks as a side effect.

The output depends on the grpcio-tools (bundled protoc) version, so regenerate
with the pinned version only; ``tests/unit/test_proto_schema.py`` checks that the
committed modules are fresh.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import tempfile

#: Directory holding the ``.proto`` sources (and the committed modules).
PROTO_DIR: pathlib.Path = pathlib.Path(__file__).resolve().parent

#: Import prefix of the ``.proto`` files, matching the Python package name.
VIRTUAL_PREFIX: str = "summaryd/proto"

#: Suffixes of everything this script generates.
GENERATED_SUFFIXES: tuple[str, ...] = ("_pb2.py", "_pb2.pyi")


def proto_sources(proto_dir: pathlib.Path = PROTO_DIR) -> list[pathlib.Path]:
    """List the ``.proto`` files to compile.

    Args:
        proto_dir: Directory holding the ``.proto`` files.

    Returns:
        The ``.proto`` files, sorted by name.
    """
    return sorted(proto_dir.glob("*.proto"))


def is_generated(path: pathlib.Path) -> bool:
    """Tell whether a file name is one this script generates.

    Args:
        path: Any file path.

    Returns:
        True for ``*_pb2.py`` and ``*_pb2.pyi`` files.
    """
    return path.name.endswith(GENERATED_SUFFIXES)


def generate(out_dir: pathlib.Path) -> list[pathlib.Path]:
    """Compile every ``proto/*.proto`` into ``out_dir``.

    Writes ``<name>_pb2.py`` and ``<name>_pb2.pyi`` flat into ``out_dir`` and
    deletes any other ``*_pb2.py`` / ``*_pb2.pyi`` there (left over from a
    removed ``.proto``), so that ``out_dir`` holds exactly the fresh set.

    Args:
        out_dir: Destination directory; created if missing.

    Returns:
        The written files, sorted by name.

    Raises:
        RuntimeError: If protoc fails (its stderr is included).
    """
    sources = proto_sources()
    if not sources:
        raise RuntimeError(f"no .proto files in {PROTO_DIR}")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="summaryd-protoc-") as tmp:
        tmp_dir = pathlib.Path(tmp)
        cmd = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"--proto_path={VIRTUAL_PREFIX}={PROTO_DIR}",
            f"--python_out={tmp_dir}",
            f"--pyi_out={tmp_dir}",
            *(f"{VIRTUAL_PREFIX}/{src.name}" for src in sources),
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"protoc failed ({result.returncode}): {' '.join(cmd)}\n{result.stderr}"
            )
        built = sorted(p for p in (tmp_dir / VIRTUAL_PREFIX).iterdir() if is_generated(p))
        written = []
        for src in built:
            dest = out_dir / src.name
            shutil.copyfile(src, dest)
            written.append(dest)
    fresh = {p.name for p in written}
    for stale in out_dir.iterdir():
        if is_generated(stale) and stale.name not in fresh:
            stale.unlink()
    return written


def main() -> int:
    """Regenerate the committed modules next to this script.

    Returns:
        Process exit status.
    """
    for path in generate(PROTO_DIR):
        print(path.relative_to(PROTO_DIR.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
