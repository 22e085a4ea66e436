"""Array records from a hostile client, against the real daemon.

Each example is a real record of one kind (made by the SDK's own conversion of
a tiny input) with hostile mutations: parameters replaced, removed or added,
dtypes and shapes changed, data cut, padded or replaced by a blob number that
does not exist, tags and steps of the wrong type.  The records go into a ring
the daemon adopted, behind an OPEN for their writer, so they reach the
encoders.  After each example the daemon must answer status (same pid), and a
good writer in this process must still get its flushes and every event.
"""

from __future__ import annotations

import mmap
import os
import struct
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from summaryd import (
    SummaryWriter,
    convert_embedding,
    convert_graph,
    convert_image,
    convert_numeric,
    convert_plugins,
    convert_pr,
    wire,
)
from summaryd.arrays import array_parts
from summaryd.ring import HEADER_SIZE, record_crc

from .hostile_fuzz import FUZZ_SETTINGS, LEAF, MSGPACK, fuzzing
from .hostile_helpers import assert_whole_event_files, good_points

pytestmark = pytest.mark.integration

RING_CAP = 4096  # FuzzSocket.attach makes rings of this size


def _samples() -> list[tuple[int, dict[str, Any], list[np.ndarray]]]:
    """One tiny, valid (params, arrays) per kind, as the SDK makes them."""
    z = np.zeros
    emb_params, emb_arrays = convert_embedding.embedding(z((3, 2)), ["a", "b", "c"], None, None)
    emb_params["subdir"] = convert_embedding.subdir(0, "emb")
    model = torch.nn.Linear(2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.trace's
        graph = convert_graph.graph(model, torch.zeros(1, 2), False, True)
    out: list[tuple[int, tuple[dict[str, Any], list[Any]]]] = [
        (wire.HISTOGRAM, convert_numeric.histogram(np.arange(10.0), "tensorflow", None)),
        (wire.HISTOGRAM, convert_numeric.histogram(np.arange(10.0), "auto", 3)),
        (wire.HISTOGRAM_RAW, convert_numeric.histogram_raw(0, 2, 2, 2, 2, [1.0, 2.0], [1, 1])),
        (wire.IMAGE, convert_image.image(z((3, 4, 4)), "CHW")),
        (wire.IMAGES, convert_image.images(z((2, 3, 4, 4), np.uint8), "NCHW")),
        (
            wire.IMAGE_BOXES,
            convert_image.image_with_boxes(z((3, 8, 8)), np.array([[0, 0, 4, 4]]), 1, "CHW", ["a"]),
        ),
        (wire.VIDEO, convert_image.video(z((1, 2, 3, 4, 4)), 4)),
        (wire.AUDIO, convert_plugins.audio(z((1, 64)), 8000)),
        (wire.PR_CURVE, convert_pr.pr_curve(np.array([0, 1]), np.array([0.2, 0.8]), 7, None)),
        (
            wire.PR_CURVE_RAW,
            convert_pr.pr_curve_raw(*[np.arange(3)] * 4, np.ones(3), np.ones(3), 3, None),
        ),
        (wire.CUSTOM_SCALARS, convert_plugins.custom_scalars({"c": {"t": ["Multiline", ["x"]]}})),
        (wire.MESH, convert_plugins.mesh(z((1, 3, 3)), None, None, None)),
        (wire.HPARAMS, (convert_plugins.hparams({"lr": 0.1}, {"m": 1.0}, None)[0], [])),
        (wire.GRAPH, graph),
        (wire.TENSOR, convert_numeric.tensor(torch.zeros(2, 2))),
        (wire.EMBEDDING, (emb_params, emb_arrays)),
    ]
    return [(kind, p, list(a)) for kind, (p, a) in out]


SAMPLES = _samples()
DTYPES = ["<f4", "<f8", "|u1", "<i8", "|b1", "<f2", ">f8", "<u8", "<i2", "O", "<c8", "x"]
DIM = st.one_of(st.integers(0, 6), st.sampled_from([1 << 20, 1 << 40, -1]), LEAF)


@st.composite
def hostile_record(draw: st.DrawFn, wid: int) -> list[Any]:
    kind, params, arrays = draw(st.sampled_from(SAMPLES))
    params = dict(params)
    specs, parts, _ = array_parts(arrays)
    data: Any = b"".join(bytes(p) for p in parts)
    tag: Any = "t"
    step: Any = 1
    walltime: Any = 1.5
    for op in draw(st.lists(st.integers(0, 9), max_size=4)):
        if op == 0 and params:
            params[draw(st.sampled_from(sorted(params)))] = draw(MSGPACK)
        elif op == 1 and params:
            del params[draw(st.sampled_from(sorted(params)))]
        elif op == 2:
            params[draw(st.text(max_size=8))] = draw(LEAF)
        elif op == 3 and isinstance(specs, list) and specs and isinstance(specs[0], list):
            specs[draw(st.integers(0, len(specs) - 1))][0] = draw(st.sampled_from(DTYPES))
        elif op == 4 and isinstance(specs, list) and specs and isinstance(specs[0], list):
            specs[draw(st.integers(0, len(specs) - 1))][1] = draw(st.lists(DIM, max_size=5))
        elif op == 5:
            data = data[: draw(st.integers(0, len(data)))] if isinstance(data, bytes) else data
        elif op == 6:
            data = draw(st.one_of(st.binary(max_size=64), st.integers(0, 99), LEAF))
        elif op == 7:
            doubled = specs + specs if isinstance(specs, list) else specs
            specs = draw(st.one_of(MSGPACK, st.just(doubled)))
        elif op == 8:
            tag, step, walltime = draw(st.tuples(LEAF, LEAF, LEAF))
        elif op == 9 and isinstance(data, bytes) and isinstance(specs, list):
            # make the data fit the (changed) specs, so the encoder itself is reached
            try:
                need = sum(
                    int(np.prod(s[1])) * np.dtype(s[0]).itemsize
                    for s in specs
                    if isinstance(s, list)
                )
            except Exception:
                need = len(data)
            if 0 <= need <= 2048:
                data = (data + b"\0" * need)[:need]
    return [kind, wid, tag, step, walltime, params, specs, data]


def test_fuzz_array_records(
    fuzz_daemon: Any,  # noqa: F811
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log_dir = str(tmp_path / "hostile")
    good_dir = tmp_path / "good"
    w = SummaryWriter(good_dir)
    steps = 0
    with fuzzing(fuzz_daemon, "array records", tmp_path_factory, capsys) as f:

        @settings(max_examples=300, **FUZZ_SETTINGS)
        @given(st.lists(hostile_record(1), min_size=1, max_size=4))
        def run(records: list[list[Any]]) -> None:
            nonlocal steps
            f.attach()
            fd = os.open(f.rings[-1], os.O_RDWR)
            mm = mmap.mmap(fd, HEADER_SIZE + RING_CAP)
            os.close(fd)
            head = 0
            try:
                opening = [wire.OPEN, 1, log_dir, "", 10, 120.0, None, 1.0]
                for rec in [opening, *records]:
                    payload = msgpack.packb(rec, use_bin_type=True)
                    total = (8 + len(payload) + 7) & ~7
                    if head + total > RING_CAP:
                        break
                    struct.pack_into("<II", mm, HEADER_SIZE + head, len(payload), 0)
                    struct.pack_into("<I", mm, HEADER_SIZE + head + 4, record_crc(payload))
                    mm[HEADER_SIZE + head + 8 : HEADER_SIZE + head + 8 + len(payload)] = payload
                    head += total
                struct.pack_into("<Q", mm, 64, head)
            finally:
                mm.close()
            try:
                f.check(records)
                w.add_scalar("fuzz/good", float(steps), steps)
                w.flush()
                steps += 1
                assert w.statistics().flushes_timed_out == 0
            finally:
                from summaryd.wire import pack

                f.sock.send(pack({"t": "bye"}))

        run()
        assert f.examples >= 300
    w.close()
    assert good_points(good_dir) == Counter({("fuzz/good", i): 1 for i in range(steps)})
    assert_whole_event_files(tmp_path)
