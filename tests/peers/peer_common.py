"""Pieces several peer programs share (they run as scripts: this file sits on their path)."""

from __future__ import annotations

import sys
import threading
from typing import Any


def stop_on_stdin() -> threading.Event:
    """An event set when the test writes "stop" (or closes stdin): the peer's
    signal to finish, read on a daemon thread so logging never waits for it."""
    stop = threading.Event()

    def wait_for_stop() -> None:
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()
    return stop


def log_media(w: Any, step: int, rng: Any) -> None:
    """One small event of each media kind (what the kill and soak peers log per step)."""
    w.add_histogram("hist", rng.standard_normal(100), step)
    w.add_image("image", rng.random((3, 8, 8)), step)
    w.add_images("images", rng.random((2, 3, 4, 4)), step)
    w.add_audio("audio", rng.random((1, 200)) * 2 - 1, step, sample_rate=8000)
    w.add_pr_curve("pr", rng.integers(0, 2, 50), rng.random(50), step)
    w.add_mesh("mesh", rng.random((1, 4, 3)), global_step=step)
    w.add_video("video", rng.random((1, 2, 3, 4, 4)), step)
