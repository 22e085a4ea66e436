"""Scalars and text in runs: the daemon's hot loop, one C call per drained batch.

Theory of operation
-------------------
A drained batch is mostly SCALAR records of a few writers and tags.  Handled
one by one in Python (``decode_record`` -> ``RECORD_ENCODERS[kind]`` -> append)
each costs about 2 µs of daemon CPU; ``encode_batch`` (``_batch.c``) turns the
whole batch into *runs* in one call:

* a **taken run**: ``count`` consecutive records of one writer ``wid`` (an
  int), all SCALAR, SCALAR_T or TEXT of the usual shape, already encoded:
  ``data`` is their framed Events joined, byte for byte what
  ``RECORD_ENCODERS[kind](decode_record(payload))`` gives for each (a
  Hypothesis test compares them), and ``tags`` the distinct tags (record
  item 2, str) in order of first appearance;
* a **declined run**: ``count`` consecutive records the C code leaves alone
  (``wid``, ``data`` and ``tags`` None): every other kind (OPEN, CLOSE, array
  records), and any scalar or text record that is malformed or unusual (a
  value that is not a number, NaN, a bool step, an int outside int64, bytes
  after the record, invalid UTF-8, ...).  The caller runs its per-record path
  on them, unchanged, so every refusal keeps its exception type and message.

Runs cover every payload once, in ring order.  The C code never raises for a
record (only MemoryError) and never refuses one: deciding is the Python path's
job.  Without the compiled module (a source checkout that was not built) every
batch is one declined run, i.e. exactly the per-record path.

How the core's hot loop uses it (``Core.batch``)::

    for wid, first, count, data, tags in encode_batch(payloads):
        run = writers.get(wid) if data is not None else None
        if run is None or starts[first] < replay:
            for i in range(first, first + count):
                ...  # the per-record body, unchanged (decode_record, RECORD_ENCODERS, handlers)
            continue
        for tag in tags:
            if run.tags.get(tag) != cid:
                self._tag_owner(run, tag, c)
        if not run.pending:
            run.oldest = now
        run.pending.append(data)
        run.upto[cid] = starts[first + count - 1] + 1
        if run.run_id not in unwritten:
            unwritten[run.run_id] = starts[first]
            run.clients.add(cid)
        n += count

(a taken run whose writer is unknown, or that starts before ``replay``, goes
the per-record way too: the unknown-writer notice per record and the replay
skip stay where they are).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

try:
    from ._batch import encode_batch as _compiled
except ImportError:  # not compiled: the per-record path does everything
    _compiled = None  # type: ignore[assignment]

# (wid, first, count, data, tags): see the module docstring.
Run = tuple[int | None, int, int, bytes | None, tuple[str, ...] | None]

_encode_batch: Callable[[Sequence[bytes | memoryview]], list[Run]] | None = _compiled

COMPILED = _encode_batch is not None


def encode_batch(payloads: Sequence[bytes | memoryview]) -> list[Run]:
    """The runs of ``payloads`` (ring record payloads, in ring order): see the module docstring.

    Raises:
        MemoryError: only that; a record is never the cause of an exception.
    """
    if _encode_batch is not None:
        return _encode_batch(payloads)
    return [(None, 0, len(payloads), None, None)] if payloads else []
