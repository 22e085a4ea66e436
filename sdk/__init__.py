"""summaryd: a drop-in ``torch.utils.tensorboard.SummaryWriter``.

``from summaryd import SummaryWriter`` and log as with torch's.  The import is
light on purpose (no numpy, ZeroMQ, torch or daemon): every DataLoader worker pays it.
"""

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
from .writer import SummaryWriter

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
]
