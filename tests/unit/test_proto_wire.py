"""Wire compatibility of the ``summaryd.proto`` schema with TensorBoard's own classes.

Bytes written with our classes parse to the same content with TensorBoard's
classes, and the other way round (messages built by ``proto_builders.py``);
nested payloads (plugin data, run metadata, hparams sessions) and the
projector config's text format parse with TensorBoard's too, and a zero simple
value keeps its presence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf import json_format, text_format
from google.protobuf.message import Message
from tensorboard.compat.proto import config_pb2 as tb_config_pb2
from tensorboard.compat.proto import event_pb2 as tb_event_pb2
from tensorboard.compat.proto import graph_pb2 as tb_graph_pb2
from tensorboard.compat.proto import summary_pb2 as tb_summary_pb2
from tensorboard.plugins.custom_scalar import layout_pb2 as tb_layout_pb2
from tensorboard.plugins.hparams import plugin_data_pb2 as tb_hparams_pb2
from tensorboard.plugins.mesh import plugin_data_pb2 as tb_mesh_pb2
from tensorboard.plugins.pr_curve import plugin_data_pb2 as tb_pr_curve_pb2
from tensorboard.plugins.projector import projector_config_pb2 as tb_projector_pb2
from tensorboard.plugins.text import plugin_data_pb2 as tb_text_pb2

from summaryd.proto import (
    event_pb2,
    graph_pb2,
    plugin_custom_scalar_pb2,
    plugin_hparams_pb2,
    plugin_pr_curve_pb2,
    plugin_text_pb2,
    summary_pb2,
    tensor_pb2,
)

from .proto_builders import (
    PNG_1X1,
    _graph_def,
    _hparams_experiment,
    _hparams_session_end,
    _hparams_session_start,
    _layout,
    _mesh,
    _plugin_metadata,
    _projector,
    _run_metadata,
    _summary_event,
    _tensor_string,
)

# --------------------------------------------------------------------------
# (2) Wire compatibility with TensorBoard's own classes.
# --------------------------------------------------------------------------


def _as_dict(msg: Message) -> dict[str, Any]:
    result: dict[str, Any] = json_format.MessageToDict(msg, preserving_proto_field_name=True)
    return result


def _assert_parses_identically(ours: Message, their_cls: type[Message]) -> Message:
    """Serialize ``ours``, parse it with ``their_cls`` and compare.

    Both the content (as a dict) and the re-serialized bytes must match.

    Returns:
        The message parsed with ``their_cls``.
    """
    wire = ours.SerializeToString(deterministic=True)
    theirs = their_cls.FromString(wire)
    # Content equality also catches fields TensorBoard would keep as unknown.
    assert _as_dict(theirs) == _as_dict(ours)
    assert theirs.SerializeToString(deterministic=True) == wire
    return theirs


# Each case: a builder of our message and the TensorBoard class that reads it.
WIRE_CASES: list[Any] = [
    pytest.param(
        lambda: event_pb2.Event(wall_time=1.5, file_version="brain.Event:2"),
        tb_event_pb2.Event,
        id="event-file_version",
    ),
    pytest.param(
        lambda: _summary_event(summary_pb2.Summary.Value(tag="loss", simple_value=0.0)),
        tb_event_pb2.Event,
        id="event-simple_value-zero",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(tag="loss", simple_value=-2.5),
            summary_pb2.Summary.Value(
                tag="acc",
                simple_value=0.75,
                metadata=_plugin_metadata("scalars"),
            ),
        ),
        tb_event_pb2.Event,
        id="event-simple_value",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="img",
                image=summary_pb2.Summary.Image(
                    height=1,
                    width=1,
                    colorspace=4,
                    encoded_image_string=PNG_1X1,
                ),
            )
        ),
        tb_event_pb2.Event,
        id="event-image",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="w",
                histo=summary_pb2.HistogramProto(
                    min=-1.0,
                    max=2.0,
                    num=3.0,
                    sum=1.0,
                    sum_squares=5.0,
                    bucket_limit=[0.0, 1.0, 2.0],
                    bucket=[1.0, 0.0, 2.0],
                ),
            )
        ),
        tb_event_pb2.Event,
        id="event-histo",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="snd",
                audio=summary_pb2.Summary.Audio(
                    sample_rate=44100.0,
                    num_channels=1,
                    length_frames=3,
                    encoded_audio_string=b"RIFF....WAVE",
                    content_type="audio/wav",
                ),
            )
        ),
        tb_event_pb2.Event,
        id="event-audio",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="note/text_summary",
                metadata=_plugin_metadata(
                    "text", plugin_text_pb2.TextPluginData(version=0).SerializeToString()
                ),
                tensor=_tensor_string([b"hello", "w\u00f6rld".encode()]),
            )
        ),
        tb_event_pb2.Event,
        id="event-tensor-string_val",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="custom_scalars__config__",
                metadata=_plugin_metadata("custom_scalars"),
                tensor=_tensor_string([_layout().SerializeToString()]),
            )
        ),
        tb_event_pb2.Event,
        id="event-custom_scalars-layout",
    ),
    pytest.param(
        lambda: _summary_event(
            summary_pb2.Summary.Value(
                tag="_hparams_/experiment",
                metadata=_plugin_metadata("hparams", _hparams_experiment().SerializeToString()),
                tensor=tensor_pb2.TensorProto(dtype=tensor_pb2.DT_FLOAT, float_val=[0.0]),
            )
        ),
        tb_event_pb2.Event,
        id="event-hparams-experiment",
    ),
    pytest.param(
        lambda: summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(tag=f"t{i}", node_name="n", tensor=t)
                for i, t in enumerate(
                    [
                        tensor_pb2.TensorProto(
                            dtype=tensor_pb2.DT_FLOAT,
                            float_val=[0.0, 1.5],
                            tensor_shape=tensor_pb2.TensorShapeProto(),
                        ),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_DOUBLE, double_val=[2.5]),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_HALF, half_val=[15360]),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_INT32, int_val=[-1, 2]),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_INT64, int64_val=[2**40]),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_BOOL, bool_val=[True, False]),
                        tensor_pb2.TensorProto(
                            dtype=tensor_pb2.DT_COMPLEX64, scomplex_val=[1.0, -1.0]
                        ),
                        tensor_pb2.TensorProto(
                            dtype=tensor_pb2.DT_COMPLEX128, dcomplex_val=[1.0, -1.0]
                        ),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_UINT32, uint32_val=[2**32 - 1]),
                        tensor_pb2.TensorProto(dtype=tensor_pb2.DT_UINT64, uint64_val=[2**64 - 1]),
                        tensor_pb2.TensorProto(
                            dtype=tensor_pb2.DT_FLOAT,
                            version_number=1,
                            tensor_shape=tensor_pb2.TensorShapeProto(
                                dim=[tensor_pb2.TensorShapeProto.Dim(size=2, name="x")]
                            ),
                            tensor_content=b"\x00\x00\x80?\x00\x00\x00@",
                        ),
                        tensor_pb2.TensorProto(
                            dtype=tensor_pb2.DT_FLOAT,
                            tensor_shape=tensor_pb2.TensorShapeProto(unknown_rank=True),
                        ),
                    ]
                )
            ]
        ),
        tb_summary_pb2.Summary,
        id="summary-tensor-dtypes",
    ),
    pytest.param(
        lambda: event_pb2.Event(
            step=10, session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)
        ),
        tb_event_pb2.Event,
        id="event-session_log-start",
    ),
    pytest.param(
        lambda: event_pb2.Event(
            session_log=event_pb2.SessionLog(
                status=event_pb2.SessionLog.CHECKPOINT,
                checkpoint_path="ckpt",
                msg="m",
            )
        ),
        tb_event_pb2.Event,
        id="event-session_log-checkpoint",
    ),
    pytest.param(
        lambda: event_pb2.Event(
            log_message=event_pb2.LogMessage(level=event_pb2.LogMessage.WARN, message="careful")
        ),
        tb_event_pb2.Event,
        id="event-log_message",
    ),
    pytest.param(
        lambda: event_pb2.Event(graph_def=_graph_def().SerializeToString()),
        tb_event_pb2.Event,
        id="event-graph_def",
    ),
    pytest.param(
        lambda: event_pb2.Event(
            step=1,
            tagged_run_metadata=event_pb2.TaggedRunMetadata(
                tag="step1",
                run_metadata=_run_metadata().SerializeToString(),
            ),
        ),
        tb_event_pb2.Event,
        id="event-tagged_run_metadata",
    ),
    pytest.param(_graph_def, tb_graph_pb2.GraphDef, id="graph_def"),
    pytest.param(_run_metadata, tb_config_pb2.RunMetadata, id="run_metadata"),
    # Nonzero versions so that the field is actually on the wire.
    pytest.param(
        lambda: plugin_text_pb2.TextPluginData(version=1),
        tb_text_pb2.TextPluginData,
        id="plugin-text",
    ),
    pytest.param(
        lambda: plugin_pr_curve_pb2.PrCurvePluginData(version=1, num_thresholds=201),
        tb_pr_curve_pb2.PrCurvePluginData,
        id="plugin-pr_curve",
    ),
    pytest.param(
        _hparams_experiment, tb_hparams_pb2.HParamsPluginData, id="plugin-hparams-experiment"
    ),
    pytest.param(
        _hparams_session_start, tb_hparams_pb2.HParamsPluginData, id="plugin-hparams-session_start"
    ),
    pytest.param(
        _hparams_session_end, tb_hparams_pb2.HParamsPluginData, id="plugin-hparams-session_end"
    ),
    pytest.param(_mesh, tb_mesh_pb2.MeshPluginData, id="plugin-mesh"),
    pytest.param(_layout, tb_layout_pb2.Layout, id="plugin-custom_scalar-layout"),
    pytest.param(_projector, tb_projector_pb2.ProjectorConfig, id="projector_config"),
]


@pytest.mark.parametrize(("build", "their_cls"), WIRE_CASES)
def test_ours_parse_identically_with_tensorboard(
    build: Callable[[], Message], their_cls: type[Message]
) -> None:
    _assert_parses_identically(build(), their_cls)


def test_zero_simple_value_keeps_presence() -> None:
    ours = _summary_event(summary_pb2.Summary.Value(tag="loss", simple_value=0.0))
    theirs = _assert_parses_identically(ours, tb_event_pb2.Event)
    assert isinstance(theirs, tb_event_pb2.Event)
    value = theirs.summary.value[0]
    # data_compat dispatches on this; a missing oneof would drop the point.
    assert value.WhichOneof("value") == "simple_value"
    assert value.simple_value == 0.0


def test_nested_payloads_parse_with_tensorboard() -> None:
    """Byte payloads nested in events are readable by the matching plugin."""
    event = tb_event_pb2.Event.FromString(
        event_pb2.Event(graph_def=_graph_def().SerializeToString()).SerializeToString()
    )
    assert _as_dict(tb_graph_pb2.GraphDef.FromString(event.graph_def)) == _as_dict(_graph_def())

    tagged = event_pb2.TaggedRunMetadata(tag="s", run_metadata=_run_metadata().SerializeToString())
    their_tagged = tb_event_pb2.TaggedRunMetadata.FromString(tagged.SerializeToString())
    assert _as_dict(tb_config_pb2.RunMetadata.FromString(their_tagged.run_metadata)) == _as_dict(
        _run_metadata()
    )

    value = summary_pb2.Summary.Value(
        tag="_hparams_/session_start_info",
        metadata=_plugin_metadata("hparams", _hparams_session_start().SerializeToString()),
    )
    their_value = tb_summary_pb2.Summary.Value.FromString(value.SerializeToString())
    content = tb_hparams_pb2.HParamsPluginData.FromString(their_value.metadata.plugin_data.content)
    assert content.WhichOneof("data") == "session_start_info"
    assert content.session_start_info.hparams["lr"].WhichOneof("kind") == "number_value"


def test_projector_config_text_format_parses_with_tensorboard() -> None:
    # The projector plugin reads projector_config.pbtxt with text_format.Parse.
    ours = _projector()
    theirs = text_format.Parse(
        text_format.MessageToString(ours), tb_projector_pb2.ProjectorConfig()
    )
    assert _as_dict(theirs) == _as_dict(ours)


REVERSE_CASES: list[Any] = [
    pytest.param(
        lambda: tb_event_pb2.Event(
            step=3,
            summary=tb_summary_pb2.Summary(
                value=[
                    tb_summary_pb2.Summary.Value(tag="loss", simple_value=0.0),
                    tb_summary_pb2.Summary.Value(
                        tag="h",
                        histo=tb_summary_pb2.HistogramProto(
                            min=1.0, bucket_limit=[1.0], bucket=[2.0]
                        ),
                    ),
                ]
            ),
        ),
        event_pb2.Event,
        id="event-summary",
    ),
    pytest.param(
        lambda: tb_event_pb2.Event(
            session_log=tb_event_pb2.SessionLog(status=tb_event_pb2.SessionLog.START)
        ),
        event_pb2.Event,
        id="event-session_log-start",
    ),
    pytest.param(
        lambda: tb_graph_pb2.GraphDef.FromString(_graph_def().SerializeToString()),
        graph_pb2.GraphDef,
        id="graph_def",
    ),
    pytest.param(
        lambda: tb_hparams_pb2.HParamsPluginData.FromString(
            _hparams_experiment().SerializeToString()
        ),
        plugin_hparams_pb2.HParamsPluginData,
        id="plugin-hparams",
    ),
    pytest.param(
        lambda: tb_layout_pb2.Layout(
            category=[
                tb_layout_pb2.Category(
                    title="c",
                    chart=[
                        tb_layout_pb2.Chart(
                            title="t",
                            margin=tb_layout_pb2.MarginChartContent(
                                series=[
                                    tb_layout_pb2.MarginChartContent.Series(
                                        value="v", lower="l", upper="u"
                                    )
                                ],
                            ),
                        ),
                    ],
                )
            ]
        ),
        plugin_custom_scalar_pb2.Layout,
        id="plugin-custom_scalar-layout",
    ),
]


@pytest.mark.parametrize(("build", "our_cls"), REVERSE_CASES)
def test_tensorboard_bytes_parse_identically_with_ours(
    build: Callable[[], Message], our_cls: type[Message]
) -> None:
    _assert_parses_identically(build(), our_cls)
