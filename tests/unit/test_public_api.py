"""The public surface: what `import summaryd` exports, loads, and how it mirrors torch."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
import types
from pathlib import Path

import summaryd
from summaryd import SummaryWriter

# torch 2.13's SummaryWriter: every public method, all implemented.
IMPLEMENTED = [
    "__init__",
    "get_logdir",
    "add_scalar",
    "add_scalars",
    "add_text",
    "add_histogram",
    "add_histogram_raw",
    "add_image",
    "add_images",
    "add_image_with_boxes",
    "add_figure",
    "add_video",
    "add_audio",
    "add_tensor",
    "add_pr_curve",
    "add_pr_curve_raw",
    "add_custom_scalars",
    "add_custom_scalars_multilinechart",
    "add_custom_scalars_marginchart",
    "add_mesh",
    "add_hparams",
    "add_graph",
    "add_onnx_graph",
    "add_embedding",
    "flush",
    "close",
    "__enter__",
    "__exit__",
]


def test_every_public_torch_method_is_implemented() -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    public = {n for n in dir(TorchWriter) if not n.startswith("_")}
    # torch's internals that are public by name only (file writer plumbing).
    public -= {"get_logdir"} | {n for n in public if n.startswith("_get_")}
    assert public - set(IMPLEMENTED) == set()


def test_all_is_explicit_and_complete() -> None:
    # Submodules (client, convert_image, ...) show in dir() once imported; they are not API.
    public = {
        n
        for n in dir(summaryd)
        if not n.startswith("_") and not isinstance(getattr(summaryd, n), types.ModuleType)
    }
    assert set(summaryd.__all__) == public | {"__version__"}


def test_import_is_light() -> None:
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "from summaryd import SummaryWriter\n"
        "dt = time.perf_counter() - t\n"
        "print(json.dumps({'seconds': dt, 'modules': sorted(sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    result = json.loads(out.stdout)
    loaded = set(result["modules"])
    for heavy in (
        "torch",
        "summaryd.daemon",
        "PIL",
        "matplotlib",
        "numpy",
        "zmq",
        "google.protobuf",
        "boto3",
        "botocore",
    ):
        assert heavy not in loaded, f"importing summaryd loads {heavy}"
    assert result["seconds"] < 1.0  # generous bound; the benchmark reports the real figure


def test_sdk_never_imports_the_daemon() -> None:
    """One-way imports: the daemon may use SDK modules (wire, limits, remote),
    never the reverse, not even lazily inside a function."""
    for path in sorted(Path(summaryd.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                parts = ["summaryd"] * (node.level > 0) + [node.module or ""]
                base = ".".join(p for p in parts if p)
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            bad = [n for n in names if n == "summaryd.daemon" or n.startswith("summaryd.daemon.")]
            assert not bad, f"{path.name}:{node.lineno} imports {bad[0]}"


def test_signatures_match_torch() -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    for name in IMPLEMENTED:
        ours = inspect.signature(getattr(SummaryWriter, name))
        theirs = inspect.signature(getattr(TorchWriter, name))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
        assert getattr(SummaryWriter, name).__doc__, f"{name} has no docstring"
