"""The summaryd protocol: ring records and control messages.

Version history
---------------
1. First version: ring records OPEN, CLOSE, SCALAR, SCALAR_TENSOR, TEXT;
   control messages hello/welcome, bell, flush/ack, status, stop, notice.
   Array records (HISTOGRAM .. EMBEDDING) and shared-memory blobs.
   EVENT (torch's ``FileWriter.add_event``/``add_summary``: a serialized
   ``Event`` built by any protobuf runtime); additive, so the version stays 1
   (an older daemon answers an EVENT record with a notice).

Ring records (bulk data, in the process's shared-memory ring, see ``ring.py``)
--------------------------------------------------------------------------------
Each record is one msgpack array whose first item is the kind.  ``wid`` is a
writer id chosen by the client, unique within that client (session).  Steps are
int or nil (nil: the event carries no step, as torch leaves ``Event.step``
unset).  Wall times are float seconds since the epoch, taken in the trainer.

==========  ====  ==========================================================
kind        code  fields after the kind
==========  ====  ==========================================================
OPEN        1     wid, log_dir (absolute str), filename_suffix (str),
                  max_queue (int; <= 0: no count bound, as torch's queue
                  of size 0), flush_secs (float >= 0; 0: write at once),
                  purge_step (int or nil), walltime (float)
CLOSE       2     wid
SCALAR      3     wid, tag (str), value (float), step, walltime
                  -> ``Summary.Value.simple_value`` (torch's default)
SCALAR_T    4     wid, tag, value (float), step, walltime, double (bool)
                  -> rank-0 tensor, DT_FLOAT or DT_DOUBLE (``new_style=True``)
TEXT        5     wid, tag (str), text (str), step, walltime
==========  ====  ==========================================================

Array records carry the other ``add_*`` calls, all in one layout::

    [kind, wid, tag (str), step, walltime, params (map), specs, data]

``params`` holds the call's small arguments (str keys; what each kind expects
is checked by its encoder in ``daemon/encode_*.py``).  ``specs`` lists the
call's arrays as ``[dtype, shape]`` pairs (numpy dtype strings such as
``"<f4"``, shapes as int lists); ``data`` is their raw C-order bytes one after
the other (bin), or an int ``n`` naming a one-off blob: the file
``<ring file>.b<n>`` next to the ring in ``/dev/shm`` (mode 0600), holding
those bytes.  A record travels in a blob when it would take more than a
quarter of the ring; the daemon removes the blob once the record's events
are in their file (the ring's tail has passed it), or with the ring when the
client is gone.

==============  ====  =============================  ===========================
kind            code  method                          output
==============  ====  =============================  ===========================
HISTOGRAM       6     add_histogram                   Summary.Value.histo
HISTOGRAM_RAW   7     add_histogram_raw               Summary.Value.histo
IMAGE           8     add_image, add_figure           Summary.Value.image (PNG)
IMAGES          9     add_images, add_figure (list)   Summary.Value.image (PNG)
IMAGE_BOXES     10    add_image_with_boxes            Summary.Value.image (PNG)
VIDEO           11    add_video                       Summary.Value.image (GIF)
AUDIO           12    add_audio                       Summary.Value.audio (WAV)
PR_CURVE        13    add_pr_curve                    pr_curves plugin tensor
PR_CURVE_RAW    14    add_pr_curve_raw                pr_curves plugin tensor
CUSTOM_SCALARS  15    add_custom_scalars[_*chart]     custom_scalars layout
MESH            16    add_mesh                        mesh plugin tensors
HPARAMS         17    add_hparams                     hparams plugin summaries
GRAPH           18    add_graph                       Event.graph_def + run metadata
ONNX_GRAPH      19    add_onnx_graph                  Event.graph_def
TENSOR          20    add_tensor                      Summary.Value.tensor
EMBEDDING       21    add_embedding                   projector files in the log dir
EVENT           22    FileWriter.add_event /          the Event itself, its wall
                      add_summary / add_graph / ...   time and step set from the
                                                      record (step nil: as sent)
==============  ====  =============================  ===========================

An EVENT record's ``params`` is empty and its one array is the serialized
``Event`` (dtype ``|u1``); ``tag`` is its first summary value's tag, or empty
(no same-tag check).  The daemon parses it with its own schema and refuses
what does not parse.

Control messages (ZeroMQ DEALER -> daemon ROUTER over ``ipc://``)
-------------------------------------------------------------------
One frame, a msgpack map with ``t`` naming the message.  Bulk data never
travels here.  A flush names a ring position: the daemon acknowledges it once
every record of that client before the position is in its event file.

=========  =========  ======================================================
t          direction  fields
=========  =========  ======================================================
hello      c -> d     v (PROTOCOL_VERSION), pid, start (clock ticks),
                      sid (hex session id), ring (ring file name), argv
welcome    d -> c     v, pid (daemon's)
bell       c -> d     (none): records are waiting and the daemon asked to be
                      woken (the ring's bell word was set)
flush      c -> d     tok (int), pos (ring position)
ack        d -> c     tok
status     any -> d   (none)
status     d -> any   daemon (map), clients (list), runs (list), totals (map)
bye        c -> d     (none); the client is done: drain its ring, close its
                      writers, remove the ring
stop       any -> d   (none); the daemon drains every ring, then exits
stopping   d -> any   (none)
notice     d -> c     level ("warning" or "error"), msg (str)
=========  =========  ======================================================
"""

from __future__ import annotations

from typing import Any

import msgpack

from .errors import ProtocolError

PROTOCOL_VERSION = 1

# Ring record kinds.
OPEN = 1
CLOSE = 2
SCALAR = 3
SCALAR_T = 4
TEXT = 5
HISTOGRAM = 6
HISTOGRAM_RAW = 7
IMAGE = 8
IMAGES = 9
IMAGE_BOXES = 10
VIDEO = 11
AUDIO = 12
PR_CURVE = 13
PR_CURVE_RAW = 14
CUSTOM_SCALARS = 15
MESH = 16
HPARAMS = 17
GRAPH = 18
ONNX_GRAPH = 19
TENSOR = 20
EMBEDDING = 21
EVENT = 22
ARRAY_KINDS = range(HISTOGRAM, EVENT + 1)
ARRAY_FIELDS = 8  # kind, wid, tag, step, walltime, params, specs, data

# Upper bounds on what the daemon accepts from a control message.
MAX_MESSAGE_BYTES = 1 << 20
_UNPACK_LIMITS = dict(
    max_str_len=1 << 16,
    max_bin_len=1 << 16,
    max_array_len=1 << 12,
    max_map_len=1 << 8,
    max_ext_len=0,
)

_int = int
_str = str
_num = (int, float)
_list = list
_dict = dict

# Required fields and their types, per message; extra fields are ignored so an
# older daemon can talk to a newer client of the same PROTOCOL_VERSION.
MESSAGES: dict[str, dict[str, Any]] = {
    "hello": {"v": _int, "pid": _int, "start": _int, "sid": _str, "ring": _str, "argv": _list},
    "welcome": {"v": _int, "pid": _int},
    "bell": {},
    "flush": {"tok": _int, "pos": _int},
    "ack": {"tok": _int},
    "status": {},
    "stop": {},
    "bye": {},
    "stopping": {},
    "notice": {"level": _str, "msg": _str},
}


# -- builders: the one place each control message is made ---------------------------
# (``unpack`` is the one decoder; a test round-trips every builder through it.)


def hello(pid: int, start: int, sid: str, ring: str, argv: list[str]) -> dict[str, Any]:
    """c -> d: who the client is and which ring it writes (argv bounded: the
    daemon refuses strings over 64 KiB and messages over 1 MiB)."""
    return {
        "t": "hello",
        "v": PROTOCOL_VERSION,
        "pid": pid,
        "start": start,
        "sid": sid,
        "ring": ring,
        "argv": [str(a)[:256] for a in argv[:32]],
    }


def welcome(pid: int) -> dict[str, Any]:
    """d -> c: the daemon adopted the client's ring."""
    return {"t": "welcome", "v": PROTOCOL_VERSION, "pid": pid}


def bell() -> dict[str, Any]:
    """c -> d: records wait and the daemon asked to be woken."""
    return {"t": "bell"}


def flush(tok: int, pos: int) -> dict[str, Any]:
    """c -> d: acknowledge ``tok`` once every record before ``pos`` is in its file."""
    return {"t": "flush", "tok": tok, "pos": pos}


def ack(tok: int) -> dict[str, Any]:
    """d -> c: the flush ``tok`` is done."""
    return {"t": "ack", "tok": tok}


def status() -> dict[str, Any]:
    """any -> d: ask for the daemon's status."""
    return {"t": "status"}


def status_reply(
    daemon: dict[str, Any], clients: list[Any], runs: list[Any], totals: dict[str, Any]
) -> dict[str, Any]:
    """d -> any: the daemon, its clients, runs and totals."""
    return {"t": "status", "daemon": daemon, "clients": clients, "runs": runs, "totals": totals}


def bye() -> dict[str, Any]:
    """c -> d: drain my ring, close my writers, remove the ring."""
    return {"t": "bye"}


def stop() -> dict[str, Any]:
    """any -> d: drain every ring, then exit."""
    return {"t": "stop"}


def stopping() -> dict[str, Any]:
    """d -> any: the answer to ``stop``."""
    return {"t": "stopping"}


def notice(level: str, msg: str) -> dict[str, Any]:
    """d -> c: a warning or error for the client to show (``DaemonNoticeWarning``)."""
    return {"t": "notice", "level": level, "msg": msg}


_B1 = [bytes((i,)) for i in range(128)]


def varint(n: int) -> bytes:
    """A protobuf varint (int64 negatives as ten bytes): the daemon's hot scalar
    encoder and the SDK's raw events both frame fields with it."""
    if 0 <= n < 0x80:
        return _B1[n]
    if 0 < n < 0x4000:
        return bytes(((n & 0x7F) | 0x80, n >> 7))
    if 0 < n < 0x200000:
        return bytes(((n & 0x7F) | 0x80, ((n >> 7) & 0x7F) | 0x80, n >> 14))
    if n < 0:
        n += 1 << 64  # int64 fields encode negatives as ten-byte two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def pack(message: dict[str, Any]) -> bytes:
    """Encode a control message (the caller builds a map with ``t``)."""
    return msgpack.packb(message, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> dict[str, Any]:
    """Decode and validate a control message.

    Raises:
        ProtocolError: not msgpack, not a map, unknown ``t``, or a field is
            missing or of the wrong type.
    """
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        msg = msgpack.unpackb(data, raw=False, strict_map_key=True, **_UNPACK_LIMITS)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"undecodable message: {exc.__class__.__name__}: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a map")
    kind = msg.get("t")
    fields = MESSAGES.get(kind) if isinstance(kind, str) else None
    if fields is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    for name, typ in fields.items():
        value = msg.get(name)
        if not isinstance(value, typ) or isinstance(value, bool) and typ is not bool:
            raise ProtocolError(f"{kind}: field {name!r} missing or not {typ.__name__}")
    return msg
