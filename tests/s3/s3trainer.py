"""A trainer on one simulated node: logs scalars into an s3:// run through its node's daemon.

Configured by environment: S3T_URL, S3T_TAG, S3T_STEPS (count), S3T_DELAY
(seconds between steps). Prints "done" after close() returned.
"""

from __future__ import annotations

import os
import time

from summaryd import SummaryWriter


def main() -> None:
    w = SummaryWriter(os.environ["S3T_URL"])
    delay = float(os.environ.get("S3T_DELAY", "0"))
    for i in range(int(os.environ["S3T_STEPS"])):
        w.add_scalar(os.environ["S3T_TAG"], float(i), i)
        if delay:
            time.sleep(delay)
    w.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
