"""torch's FileWriter surface (what Lightning, Composer and torch's own
``add_hparams`` use): the same calls through torch's writer and ours, read back
by TensorBoard; plus what only summaryd does (messages of other protobuf
runtimes, refusing bytes that are no Event)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from summaryd import DaemonNoticeWarning
from summaryd.errors import ArgumentAttributeError

from ..conftest import DaemonEnv, read_events
from .compare import Clock, assert_trees_equal, run_both

pytestmark = [pytest.mark.differential, pytest.mark.integration]

WT = 1_234_567_890.25


def _compare(tmp_path: Path, calls: Any, **kwargs: Any) -> Any:
    clock = Clock()
    t, o = run_both(tmp_path, calls, **kwargs)
    return assert_trees_equal(t, o, clock)


def test_lightning_log_hyperparams(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    # Lightning's TensorBoardLogger.log_hyperparams, verbatim in substance.
    from torch.utils.tensorboard.summary import hparams

    def calls(w: Any) -> None:
        exp, ssi, sei = hparams({"lr": 0.01, "layers": 2, "opt": "adam"}, {"hp_metric": -1})
        fw = w._get_file_writer()
        fw.add_summary(exp)
        fw.add_summary(ssi)
        fw.add_summary(sei)
        w.add_scalar("hp_metric", 0.5, 3)
        fw.add_summary(sei, global_step=7, walltime=WT)

    _compare(tmp_path, calls)


def test_add_event_step_walltime_and_event_writer(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    from tensorboard.compat.proto.event_pb2 import Event, LogMessage

    def calls(w: Any) -> None:
        fw = w.file_writer
        fw.add_event(Event(log_message=LogMessage(level=LogMessage.INFO, message="hi")), step=4)
        fw.add_event(Event(step=9, file_version="brain.Event:2"), walltime=WT)
        e = Event(step=11, wall_time=WT + 1, log_message=LogMessage(message="as is"))
        fw.event_writer.add_event(e)  # written as it is: no new wall time
        assert e.wall_time == WT + 1
        assert fw.get_logdir() == w.get_logdir() == fw.event_writer.get_logdir()

    _compare(tmp_path, calls)


def test_add_event_sets_the_callers_fields_as_torch(
    shared_daemon: DaemonEnv, tmp_path: Path
) -> None:
    from tensorboard.compat.proto.event_pb2 import Event

    def calls(w: Any) -> None:
        e = Event(file_version="x")
        w.file_writer.add_event(e, step=3, walltime=WT)
        assert (e.step, e.wall_time) == (3, WT)

    _compare(tmp_path, calls)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:DeprecationWarning")
def test_add_graph_and_onnx_graph(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    import torch
    from torch.utils.tensorboard._pytorch_graph import graph

    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU())
    profile = graph(model, (torch.zeros(1, 3),))

    def calls(w: Any) -> None:
        w._get_file_writer().add_graph(profile, walltime=WT)
        w._get_file_writer().add_onnx_graph(profile[0], walltime=WT + 1)

    _compare(tmp_path, calls)


def test_file_writer_lifecycle_as_torch(shared_daemon: DaemonEnv, tmp_path: Path) -> None:
    seen: list[Any] = []

    def calls(w: Any) -> None:
        first = w._get_file_writer()
        w.add_scalars("m/x", {"a": 1.0, "b": 2.0}, 1)
        seen.append(sorted(w.all_writers))
        assert w.file_writer is first and w.all_writers[w.get_logdir()] is first
        w.close()
        seen.append((w.file_writer, w.all_writers))
        w.add_scalar("after", 1.0, 2)  # re-opens: a new file writer
        seen.append(w.file_writer is not None and w.file_writer is not first)
        seen.append(len(w.default_bins))

    _compare(tmp_path, calls)
    torch_seen, ours_seen = seen[:4], seen[4:]
    rel = [[p.replace(str(tmp_path / "torch"), "") for p in torch_seen[0]]]
    assert rel == [[p.replace(str(tmp_path / "ours"), "") for p in ours_seen[0]]]
    assert torch_seen[1:] == ours_seen[1:] == [(None, None), True, 1549]


def test_messages_of_any_protobuf_runtime(daemon: DaemonEnv, tmp_path: Path) -> None:
    """tensorboardX's and summaryd's own classes give the same event as TensorBoard's."""
    from tensorboard.compat.proto import event_pb2 as tb_event
    from tensorboard.compat.proto import summary_pb2 as tb_summary
    from tensorboardX.proto import event_pb2 as tbx_event
    from tensorboardX.proto import summary_pb2 as tbx_summary

    from summaryd import SummaryWriter
    from summaryd.proto import event_pb2 as our_event
    from summaryd.proto import summary_pb2 as our_summary

    w = SummaryWriter(str(tmp_path / "run"))
    for i, (ev, sm) in enumerate(
        [(tb_event, tb_summary), (tbx_event, tbx_summary), (our_event, our_summary)]
    ):
        s = sm.Summary(value=[sm.Summary.Value(tag="v", simple_value=0.5)])
        w.file_writer.add_summary(s, global_step=i, walltime=WT)
        w.file_writer.add_event(ev.Event(summary=s), step=10 + i, walltime=WT)
    w.close()
    events = read_events(tmp_path / "run")[1:]
    assert [(e.step, e.wall_time, e.summary.value[0].simple_value) for e in events] == [
        (s, WT, 0.5) for s in (0, 10, 1, 11, 2, 12)
    ]


class _NotAnEvent:
    """Claims to be an Event (its descriptor's name) but serializes to garbage."""

    class DESCRIPTOR:  # noqa: N801 - protobuf's attribute name
        name = "Event"

    wall_time = 0.0
    step = 0

    def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's method name
        return b"\xff\xff\xff\xff"


def test_bytes_that_do_not_parse_are_refused_and_the_run_goes_on(
    daemon: DaemonEnv, tmp_path: Path
) -> None:
    from summaryd import SummaryWriter

    w = SummaryWriter(str(tmp_path / "run"))
    w.add_scalar("before", 1.0, 1)
    with pytest.warns(DaemonNoticeWarning, match="not a tensorboard Event"):
        w.file_writer.add_event(_NotAnEvent(), step=2)
        w.flush()
        w.add_scalar("after", 2.0, 3)
        w.flush()
    w.close()
    tags = [(e.step, e.summary.value[0].tag) for e in read_events(tmp_path / "run")[1:]]
    assert tags == [(1, "before"), (3, "after")]


@pytest.mark.parametrize(
    ("method", "arg"),
    [("add_event", None), ("add_event", "event"), ("add_summary", 3), ("add_onnx_graph", b"")],
)
def test_bad_messages_raise_at_the_call_site_as_torch(
    shared_daemon: DaemonEnv, tmp_path: Path, method: str, arg: Any
) -> None:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    from summaryd import SummaryWriter

    tw = TorchWriter(str(tmp_path / "torch"))
    with pytest.raises(Exception) as theirs:
        getattr(tw._get_file_writer(), method)(arg)
    tw.close()
    w = SummaryWriter(str(tmp_path / "ours"))
    with pytest.raises(ArgumentAttributeError) as ours:
        getattr(w._get_file_writer(), method)(arg)
    w.close()
    assert isinstance(ours.value, type(theirs.value))
    assert method.split("_", 1)[1].split("_")[0] in str(ours.value) or "graph" in str(ours.value)


def test_event_file_name_is_the_file_tensorboard_reads(daemon: DaemonEnv, tmp_path: Path) -> None:
    from summaryd import SummaryWriter

    w = SummaryWriter(str(tmp_path / "run"), filename_suffix=".x")
    w.add_scalar("a", 1.0, 1)
    name = w.file_writer.event_writer._file_name  # Composer uploads this after a flush
    assert Path(name).parent == tmp_path / "run" and name.endswith(".x")
    w.close()
    events = read_events(tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == [Path(name).name]
    assert events[-1].summary.value[0].tag == "a"


def test_closing_a_subrun_file_writer_reopens_on_use(daemon: DaemonEnv, tmp_path: Path) -> None:
    from summaryd import SummaryWriter

    w = SummaryWriter(str(tmp_path))
    w.add_scalars("m", {"a": 1.0}, 1)
    sub = w.all_writers[str(tmp_path / "m_a")]
    sub.close()
    assert str(tmp_path / "m_a") not in w.all_writers
    sub.reopen()  # torch: "Can be called after close() to add more events"
    w.add_scalars("m", {"a": 2.0}, 2)
    w.close()
    steps = [e.step for e in read_events(tmp_path / "m_a") if e.HasField("summary")]
    assert steps == [1, 2]
