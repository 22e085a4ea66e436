"""summaryd: a drop-in ``torch.utils.tensorboard.SummaryWriter``.

``from summaryd import SummaryWriter`` and log as with torch's.  The import is
light on purpose (no numpy, ZeroMQ, torch or daemon): every DataLoader worker pays it.
``import summaryd`` alone loads only the exceptions and ``patch``: the startup
hook (``SUMMARYD_PATCH=1``) imports it in every process of a tree, and the
writer (``writer.py``, the client, msgpack) loads on first use of
``SummaryWriter``.
"""

import typing as _typing

from ._version import __version__
from .errors import (
    ArgumentTypeError,
    ArgumentValueError,
    DaemonNoticeWarning,
    DaemonUnavailableError,
    InvalidArgumentError,
    ProtocolError,
    RecordsDroppedWarning,
    RuntimeDirError,
    ScalarShapeError,
    SummarydError,
    SummarydWarning,
    UnsupportedValueError,
)
from .patching import patch, unpatch

if _typing.TYPE_CHECKING:
    from .writer import SummaryWriter


def __getattr__(name: str) -> _typing.Any:
    if name == "SummaryWriter":
        from .writer import SummaryWriter

        return SummaryWriter
    raise AttributeError(f"module 'summaryd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "ArgumentTypeError",
    "ArgumentValueError",
    "DaemonNoticeWarning",
    "DaemonUnavailableError",
    "InvalidArgumentError",
    "ProtocolError",
    "RecordsDroppedWarning",
    "RuntimeDirError",
    "ScalarShapeError",
    "SummaryWriter",
    "SummarydError",
    "SummarydWarning",
    "UnsupportedValueError",
    "__version__",
    "patch",
    "unpatch",
]
