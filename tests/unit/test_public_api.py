"""The public surface: what `import summaryd` exports, loads, and how it mirrors torch."""

from __future__ import annotations

import inspect
import types
import json
import subprocess
import sys

import summaryd
from summaryd import SummaryWriter

# Methods of torch's SummaryWriter that summaryd implements so far.
IMPLEMENTED = [
    "__init__",
    "get_logdir",
    "add_scalar",
    "add_scalars",
    "add_text",
    "flush",
    "close",
    "__enter__",
    "__exit__",
]


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
    ):
        assert heavy not in loaded, f"importing summaryd loads {heavy}"
    assert result["seconds"] < 1.0  # generous bound; the benchmark reports the real figure


def test_signatures_match_torch() -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    for name in IMPLEMENTED:
        ours = inspect.signature(getattr(SummaryWriter, name))
        theirs = inspect.signature(getattr(TorchWriter, name))
        assert [(p.name, p.kind, p.default) for p in ours.parameters.values()] == [
            (p.name, p.kind, p.default) for p in theirs.parameters.values()
        ], name
        assert getattr(SummaryWriter, name).__doc__, f"{name} has no docstring"
