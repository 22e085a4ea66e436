"""Argument validation and conversion, done in the caller's process.

Pure functions: they turn what a user passes torch's ``SummaryWriter`` into
plain Python values for a ring record, or raise at the call site with an
exception that names the argument and subclasses what torch raises for the
same input.  numpy and torch are imported only when an argument needs them,
so ``import summaryd`` stays light.
"""

from __future__ import annotations

import os
import time
from typing import Any

from .errors import ArgumentTypeError, ArgumentValueError, ScalarShapeError, UnsupportedValueError

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1


def _is_torch_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "numel")


def to_scalar(value: Any, name: str = "scalar_value") -> float:
    """A float from anything torch's ``summary.scalar`` accepts.

    torch runs ``make_np`` (numbers, strings, lists, numpy arrays, tensors),
    asserts one element and calls ``float``.

    Raises:
        ScalarShapeError: more than one element (torch: AssertionError).
        UnsupportedValueError: not a number, array or tensor (torch: NotImplementedError).
        ArgumentValueError / ArgumentTypeError: ``float()`` refuses the element.
    """
    t = type(value)
    if t is float or t is int or t is bool:
        return float(value)
    if _is_torch_tensor(value):
        n = value.numel()
        if n != 1:
            raise ScalarShapeError(
                f"{name}: expected a scalar (one element), got a tensor of shape "
                f"{tuple(value.shape)}"
            )
        return _float(value.detach().cpu().item(), name)
    if isinstance(value, str):
        return _float(value, name)
    import numpy as np

    if isinstance(value, (list, np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.size != 1:
            raise ScalarShapeError(
                f"{name}: expected a scalar (one element), got an array of shape {arr.shape}"
            )
        return _float(arr.reshape(()).item(), name)
    if isinstance(value, (int, float)):  # subclasses of int/float (e.g. IntEnum)
        return float(value)
    raise UnsupportedValueError(
        f"{name}: expected a number, numpy array or torch tensor, got {t.__name__}"
    )


def _float(x: Any, name: str) -> float:
    try:
        return float(x)
    except ValueError as exc:
        raise ArgumentValueError(f"{name}: {exc}") from None
    except TypeError as exc:
        raise ArgumentTypeError(f"{name}: expected a real number: {exc}") from None


def to_step(step: Any, name: str = "global_step") -> int | None:
    """The event step (``int(step)`` as torch does), or None for no step."""
    if step is None:
        return None
    try:
        s = int(step.item()) if _is_torch_tensor(step) else int(step)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name}: expected an integer step, got {step!r} ({exc})") from None
    if not INT64_MIN <= s <= INT64_MAX:
        raise ArgumentValueError(f"{name}: {s} does not fit in a signed 64-bit step")
    return s


def to_walltime(walltime: Any, name: str = "walltime") -> float:
    """Seconds since the epoch: now when ``walltime`` is None."""
    if walltime is None:
        return time.time()
    try:
        return float(walltime)
    except (TypeError, ValueError):
        raise ArgumentTypeError(
            f"{name}: expected seconds since the epoch as a number, got {walltime!r}"
        ) from None


def to_tag(tag: Any, name: str = "tag") -> str:
    if isinstance(tag, str):
        return str(tag)
    raise ArgumentTypeError(f"{name}: expected str, got {type(tag).__name__}")


def to_text(text: Any, name: str = "text_string") -> str:
    if isinstance(text, str):
        return str(text)
    raise ArgumentTypeError(f"{name}: expected str, got {type(text).__name__}")


def to_log_dir(log_dir: Any) -> str:
    try:
        return os.fspath(log_dir)  # type: ignore[no-any-return]
    except TypeError:
        raise ArgumentTypeError(
            f"log_dir: expected a str or path, got {type(log_dir).__name__}"
        ) from None


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
