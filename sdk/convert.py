"""Argument validation and conversion, done in the caller's process.

Pure functions: they turn what a user passes torch's ``SummaryWriter`` into
plain Python values for a ring record, or raise at the call site with an
exception that names the argument and is an instance of what torch 2.13
raises for the same input (``errors.py`` has the classes).  What torch accepts
is accepted, with torch's meaning.  numpy and torch are imported only when an
argument needs them, so ``import summaryd`` stays light.
"""

from __future__ import annotations

import os
import time
from typing import Any, NoReturn

from .errors import (
    ArgumentAttributeError,
    ArgumentEncodingError,
    ArgumentRangeError,
    ArgumentTypeError,
    ArgumentValueError,
    ScalarShapeError,
    UnsupportedValueError,
)

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numel")


def reraise(exc: BaseException, name: str, expected: str) -> NoReturn:
    """Re-raise ``exc`` (from converting argument ``name``) as our subclass of its type."""
    msg = f"{name}: expected {expected}, got an unusable value ({exc})"
    if isinstance(exc, UnicodeEncodeError):
        raise ArgumentEncodingError(name, exc) from None
    if isinstance(exc, OverflowError):
        raise ArgumentRangeError(msg) from None
    if isinstance(exc, ValueError):
        raise ArgumentValueError(msg) from None
    if isinstance(exc, AttributeError):
        raise ArgumentAttributeError(msg) from None
    if isinstance(exc, TypeError):
        raise ArgumentTypeError(msg) from None
    raise exc


def _make_np(x: Any, name: str) -> Any:
    """torch's ``make_np``: arrays as they are, numpy scalars wrapped, tensors to numpy."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    if _is_torch_tensor(x):
        import torch

        if x.dtype == torch.bfloat16:
            x = x.to(torch.float16)  # as torch's _prepare_pytorch: numpy has no bfloat16
        return x.detach().cpu().numpy()
    raise UnsupportedValueError(
        f"{name}: expected a number, numpy array or torch tensor, got {type(x).__name__}"
    )


def to_scalar(value: Any, name: str = "scalar_value") -> float:
    """A float from anything torch's ``summary.scalar`` accepts.

    torch runs ``make_np`` (numbers and strings numpy calls scalars, numpy
    arrays, tensors; not lists), asserts one element and calls ``float``.

    Raises:
        ScalarShapeError: more than one element (torch: AssertionError).
        UnsupportedValueError: not a scalar, array or tensor (torch: NotImplementedError).
        ArgumentValueError / ArgumentTypeError / ArgumentRangeError: ``float()`` refuses it.
    """
    t = type(value)
    try:
        if t is float or t is int or t is bool:
            return float(value)
        arr = _make_np(value, name).squeeze()
        if arr.ndim != 0:
            raise ScalarShapeError(
                f"{name}: expected a scalar (one element), got shape {tuple(arr.shape)}"
            )
        return float(arr)
    except (ScalarShapeError, UnsupportedValueError):
        raise
    except Exception as exc:
        reraise(exc, name, "a real number")


def to_step(step: Any, name: str = "global_step") -> int | None:
    """The event step (``int(step)`` as torch does), or None for no step."""
    if step is None:
        return None
    try:
        s = int(step)
    except Exception as exc:
        reraise(exc, name, "an integer step")
    if not INT64_MIN <= s <= INT64_MAX:  # protobuf's int64 field raises ValueError
        raise ArgumentValueError(f"{name}: {s} does not fit in a signed 64-bit step")
    return s


def to_walltime(walltime: Any, name: str = "walltime") -> float:
    """Seconds since the epoch: now when ``walltime`` is None.

    Numbers only, as protobuf's double field takes them (a str is a TypeError).
    """
    if walltime is None:
        return time.time()
    if isinstance(walltime, (str, bytes)):
        raise ArgumentTypeError(f"{name}: expected seconds since the epoch, got {walltime!r}")
    try:
        return float(walltime)
    except Exception as exc:
        reraise(exc, name, "seconds since the epoch as a number")


def to_tag(tag: Any, name: str = "tag") -> str:
    """A tag as protobuf takes it: str, UTF-8 bytes, or None for the empty tag."""
    if isinstance(tag, str):
        s = str(tag)
    elif tag is None:
        return ""
    elif isinstance(tag, bytes):
        try:
            return tag.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ArgumentValueError(f"{name}: bytes that are not UTF-8 ({exc})") from None
    else:
        raise ArgumentTypeError(f"{name}: expected str, got {type(tag).__name__}")
    check_utf8(s, name)
    return s


def to_str(value: Any, name: str) -> str:
    """A str where torch concatenates the argument with a str (TypeError otherwise)."""
    if not isinstance(value, str):
        raise ArgumentTypeError(f"{name}: expected str, got {type(value).__name__}")
    check_utf8(value, name)
    return str(value)


def to_purge_step(step: Any) -> int | None:
    """purge_step goes straight into ``Event.step``: an integer (protobuf's TypeError otherwise)."""
    if step is None:
        return None
    if not hasattr(step, "__index__"):
        raise ArgumentTypeError(f"purge_step: expected an integer, got {type(step).__name__}")
    s = step.__index__()
    if not INT64_MIN <= s <= INT64_MAX:
        raise ArgumentValueError(f"purge_step: {s} does not fit in a signed 64-bit step")
    return int(s)


def check_utf8(s: str, name: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ArgumentEncodingError(name, exc) from None


def to_text(text: Any, name: str = "text_string") -> str:
    """A str (torch calls ``text.encode``: anything else is an AttributeError)."""
    if not isinstance(text, str):
        raise ArgumentAttributeError(f"{name}: expected str, got {type(text).__name__}")
    check_utf8(text, name)
    return str(text)


def to_main_tag(tag: Any, name: str = "main_tag") -> str:
    """add_scalars' main tag (torch calls ``main_tag.replace``: AttributeError otherwise)."""
    if not isinstance(tag, str):
        raise ArgumentAttributeError(f"{name}: expected str, got {type(tag).__name__}")
    check_utf8(tag, name)
    return str(tag)


def check_subrun(log_dir: str, path: str, name: str) -> None:
    """A sub-run (add_scalars' ``log_dir/<main_tag>_<key>``) must stay inside ``log_dir``.

    torch would follow a key like ``../../x`` out of the run; summaryd refuses it.
    """
    if "\0" in path:
        raise ArgumentValueError(f"{name}: contains a NUL byte")
    root = os.path.normpath(os.path.abspath(log_dir))
    sub = os.path.normpath(os.path.abspath(path))
    if os.path.commonpath([root, sub]) != root or sub == root:
        raise ArgumentValueError(
            f"{name}: the run directory {path!r} would lie outside the log dir {log_dir!r}"
        )


def to_log_dir(log_dir: Any) -> str:
    """A directory path, or an ``s3://`` URL in its canonical form; like torch,
    anything else is used as ``str(log_dir)``.  Any other URL scheme raises
    ``UnsupportedLogDirError`` (it would become a local directory ``gs:/...``)."""
    path = os.fspath(log_dir) if isinstance(log_dir, (str, os.PathLike)) else str(log_dir)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    from . import remote

    return remote.to_url(path) if remote.is_url(path) else path


def to_queue_size(max_queue: Any) -> int:
    if isinstance(max_queue, bool) or not isinstance(max_queue, int):
        raise ArgumentTypeError(f"max_queue: expected int, got {type(max_queue).__name__}")
    return max(0, max_queue)


def to_flush_secs(flush_secs: Any) -> float:
    if isinstance(flush_secs, bool) or not isinstance(flush_secs, (int, float)):
        raise ArgumentTypeError(f"flush_secs: expected a number, got {type(flush_secs).__name__}")
    if not flush_secs >= 0:
        raise ArgumentValueError(f"flush_secs: expected >= 0, got {flush_secs}")
    return float(flush_secs)


def to_suffix(suffix: Any) -> str:
    if not isinstance(suffix, str):
        raise ArgumentTypeError(f"filename_suffix: expected str, got {type(suffix).__name__}")
    if "/" in suffix or "\0" in suffix:
        raise ArgumentValueError("filename_suffix: must not contain '/' or NUL")
    return suffix
