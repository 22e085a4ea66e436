"""Limits and rules the trainer's checks and the daemon's encoders both apply.

The SDK refuses a call that breaks them at the call site (``convert_*.py``);
the daemon checks every record against the same numbers (``encode_*.py``),
since a record may come from any program that writes a ring.  One module,
imported by both sides, next to the wire spec (``wire.py``), so the two can
never drift apart; it imports nothing heavy (numpy only inside
``estimator_bin_count``), because ``writer.py`` uses ``tensorflow_bins``.
"""

from __future__ import annotations

from typing import Any

# -- histograms and PR curves ----------------------------------------------------

# numpy's bin estimators (``np.histogram(bins=<str>)``).
ESTIMATORS = frozenset(("auto", "fd", "doane", "scott", "stone", "rice", "sturges", "sqrt"))

# Most buckets a histogram may have before merging (int bins, estimators).  torch
# has no limit (numpy allocates whatever the estimator says, up to a MemoryError);
# summaryd refuses more, so a small record never makes the daemon allocate gigabytes.
MAX_BINS = 1 << 20

# torch.utils.tensorboard.summary.pr_curve: "weird, value > 127 breaks protobuf".
MAX_THRESHOLDS = 127


def tensorflow_bins() -> list[float]:
    """torch's ``SummaryWriter.default_bins``: TensorBoard's default histogram buckets.

    Built exactly as ``SummaryWriter.__init__`` builds them (repeated ``*= 1.1``
    from 1e-12 while below 1e20, mirrored to the negatives around 0), so the
    edges are bit-identical to torch's: 1549 edges, 1548 buckets.
    """
    v = 1e-12
    buckets = []
    neg_buckets = []
    while v < 1e20:
        buckets.append(v)
        neg_buckets.append(-v)
        v *= 1.1
    return neg_buckets[::-1] + [0] + buckets


def _stone_width(x: Any, first: float, last: float) -> float:
    """numpy's ``_hist_bin_stone`` minus its "may be suboptimal" warning (global state)."""
    import numpy as np

    n = x.size
    ptp_x = np.subtract(x.max(), x.min())
    if n <= 1 or ptp_x == 0:
        return 0

    def jhat(nbins: int) -> Any:
        hh = ptp_x / nbins
        p_k = np.histogram(x, bins=nbins, range=(first, last))[0] / n
        return (2 - (n + 1) * p_k.dot(p_k)) / hh

    nbins_upper_bound = max(100, int(np.sqrt(n)))
    nbins = min(range(1, nbins_upper_bound + 1), key=jhat)
    return float(ptp_x / nbins)


def estimator_bin_count(a: Any, name: str) -> int:
    """The number of equal-width buckets ``np.histogram(a, bins=name)`` would make.

    numpy's own computation (``_get_bin_edges``): range from min/max (widened by
    0.5 each side when they are equal), the estimator's width, ``ceil(range /
    width)`` or 1 for a zero width; ``np.histogram(a, bins=<that count>)``
    then gives the same edges and counts as ``bins=name``.  Computed without
    building the edges, so an absurd count is refused before it is allocated.

    Args:
        a: The values as float64, 1-d, all finite (``np.histogram`` refuses others).
        name: One of ``ESTIMATORS``.

    Raises:
        ValueError: the range is not finite, or the count is not in 1..MAX_BINS.
    """
    import numpy as np

    first, last = a.min(), a.max()
    if not (np.isfinite(first) and np.isfinite(last)):
        raise ValueError(f"autodetected range of [{first}, {last}] is not finite")
    if first == last:
        first, last = first - 0.5, last + 0.5
    with np.errstate(all="ignore"):
        if name == "stone":
            width: Any = _stone_width(a, first, last)
        else:
            width = _selectors()[name](a, (first, last))
        if not width:
            return 1
        n = np.ceil(np.subtract(last, first, dtype=np.float64) / width)
    if not 1 <= n <= MAX_BINS:  # also refuses NaN
        raise ValueError(
            f"bins={name!r} makes {n} buckets; summaryd allows 1..{MAX_BINS} (torch allocates them)"
        )
    return int(n)


def _selectors() -> dict[str, Any]:
    try:
        from numpy.lib import _histograms_impl as impl  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.lib import histograms as impl  # type: ignore[attr-defined,no-redef]
    return impl._hist_bin_selectors  # type: ignore[attr-defined,no-any-return]


# -- images (PNG, boxes) ---------------------------------------------------------

MAX_SIDE = (1 << 31) - 1  # PNG's largest width or height
MAX_RESCALED_PIXELS = 1 << 24  # add_image_with_boxes' rescaled image: 4096x4096 (64 MiB RGBA)
MAX_LABEL_CHARS = 4096  # ~20 ms of Pillow text drawing
MAX_LABELS_CHARS = 1 << 16
