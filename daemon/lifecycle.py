"""The lifecycles of clients and runs, as tables (states x events -> next state).

The core fires an event on a client or run with ``advance``; an event a state
has no entry for is a bug in the core, never something a client can cause, so
it raises ``LifecycleError``.  What happens on a transition (files opened,
written, closed; notices) is the core's; which transitions exist is here.

Client::

    ACTIVE --gone (process dead or bye; its ring drained to the end)--> GONE
    GONE   --written (no record of it waits for a file)--> REMOVED (ring removed)

Run (one per ``(log_dir, filename_suffix)`` at a time)::

    PURGE_WAIT --start (rings scanned and earlier life closed, or PURGE_WAIT s)--> OPEN
    OPEN       --last_closed--> LINGER       (written now; joinable for ``linger`` s)
    LINGER     --joined (another process opens it)--> OPEN
    LINGER     --end (linger over, its closer re-opens, a resume)--> CLOSING
    OPEN       --retire (a trainer resumes with purge_step)--> RETIRED  (keeps its writers)
    RETIRED    --last_closed | end--> CLOSING
    CLOSING    --closed (every slot encoded and written)--> CLOSED  (file closed)

``end`` from any live state is shutdown's.  A PURGE_WAIT run keeps its
writers' records buffered (it has no file yet) whether or not writers remain.
"""

from __future__ import annotations

import enum


class LifecycleError(RuntimeError):
    """The core fired an event its object's state has no transition for."""


class ClientState(enum.Enum):
    ACTIVE = "active"
    GONE = "gone"
    REMOVED = "removed"


class RunState(enum.Enum):
    PURGE_WAIT = "purge_wait"
    OPEN = "open"
    LINGER = "linger"
    RETIRED = "retired"
    CLOSING = "closing"
    CLOSED = "closed"


C = ClientState
R = RunState

CLIENT_TABLE: dict[tuple[ClientState, str], ClientState] = {
    (C.ACTIVE, "gone"): C.GONE,
    (C.GONE, "gone"): C.GONE,
    (C.GONE, "written"): C.REMOVED,
}

RUN_TABLE: dict[tuple[RunState, str], RunState] = {
    (R.PURGE_WAIT, "joined"): R.PURGE_WAIT,
    (R.PURGE_WAIT, "last_closed"): R.PURGE_WAIT,
    (R.PURGE_WAIT, "start"): R.OPEN,
    (R.OPEN, "joined"): R.OPEN,
    (R.OPEN, "last_closed"): R.LINGER,
    (R.OPEN, "retire"): R.RETIRED,
    (R.OPEN, "end"): R.CLOSING,
    (R.LINGER, "joined"): R.OPEN,
    (R.LINGER, "end"): R.CLOSING,
    (R.RETIRED, "joined"): R.RETIRED,
    (R.RETIRED, "last_closed"): R.CLOSING,
    (R.RETIRED, "end"): R.CLOSING,
    (R.CLOSING, "closed"): R.CLOSED,
}

# States whose run takes new writers and records, and whose file (or buffer) is live.
LIVE_RUN_STATES = frozenset({R.PURGE_WAIT, R.OPEN, R.LINGER, R.RETIRED})


def next_client_state(state: ClientState, event: str) -> ClientState:
    try:
        return CLIENT_TABLE[(state, event)]
    except KeyError:
        raise LifecycleError(f"client in state {state.value} has no event {event!r}") from None


def next_run_state(state: RunState, event: str) -> RunState:
    try:
        return RUN_TABLE[(state, event)]
    except KeyError:
        raise LifecycleError(f"run in state {state.value} has no event {event!r}") from None
