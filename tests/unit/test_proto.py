"""Tests for the ``summaryd.proto`` schema.

Three things are checked:

* the committed ``*_pb2.py`` / ``*_pb2.pyi`` modules match a fresh
  ``proto/generate.py`` run;
* bytes written with our classes parse to the same content with TensorBoard's
  own classes, and the other way round;
* every message and enum we define has a TensorBoard counterpart with the same
  field names, numbers, types, cardinality, oneofs and presence. This is the
  test that ties our schema to TensorBoard's.
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor, descriptor_pool, json_format, struct_pb2, text_format
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
    plugin_mesh_pb2,
    plugin_pr_curve_pb2,
    plugin_text_pb2,
    projector_config_pb2,
    step_stats_pb2,
    summary_pb2,
    tensor_pb2,
)

PROTO_DIR = pathlib.Path(__file__).resolve().parents[2] / "proto"

OUR_MODULES: list[ModuleType] = [
    event_pb2,
    graph_pb2,
    plugin_custom_scalar_pb2,
    plugin_hparams_pb2,
    plugin_mesh_pb2,
    plugin_pr_curve_pb2,
    plugin_text_pb2,
    projector_config_pb2,
    step_stats_pb2,
    summary_pb2,
    tensor_pb2,
]

OUR_PACKAGE = "summaryd.tb"
TB_PACKAGE = "tensorboard"

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def _load_generate() -> ModuleType:
    """Load ``proto/generate.py`` of this checkout (not an installed copy)."""
    spec = importlib.util.spec_from_file_location(
        "_summaryd_proto_generate", PROTO_DIR / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------
# (1) Freshness of the generated modules.
# --------------------------------------------------------------------------


@pytest.mark.skipif(
    importlib.util.find_spec("grpc_tools") is None,
    reason="grpcio-tools (dev dependency) not installed",
)
def test_generated_modules_are_fresh(tmp_path: pathlib.Path) -> None:
    generate = _load_generate()
    fresh = {p.name: p.read_bytes() for p in generate.generate(tmp_path)}
    committed = {p.name: p.read_bytes() for p in PROTO_DIR.iterdir() if generate.is_generated(p)}

    hint = "stale generated code: run `python proto/generate.py` with the pinned grpcio-tools"
    assert sorted(committed) == sorted(fresh), hint
    assert {f"{p.stem}_pb2.py" for p in PROTO_DIR.glob("*.proto")} <= set(fresh)
    for name, content in fresh.items():
        assert committed[name] == content, f"{name}: {hint}"


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


def _tensor_string(values: list[bytes]) -> tensor_pb2.TensorProto:
    return tensor_pb2.TensorProto(
        dtype=tensor_pb2.DT_STRING,
        tensor_shape=tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=len(values))]
        ),
        string_val=values,
    )


def _plugin_metadata(plugin_name: str, content: bytes = b"") -> summary_pb2.SummaryMetadata:
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name=plugin_name, content=content
        ),
        data_class=summary_pb2.DATA_CLASS_TENSOR,
    )


def _summary_event(*values: summary_pb2.Summary.Value, step: int = 7) -> event_pb2.Event:
    return event_pb2.Event(
        wall_time=1700000000.25, step=step, summary=summary_pb2.Summary(value=values)
    )


def _graph_def() -> graph_pb2.GraphDef:
    # Shaped like torch.utils.tensorboard's add_graph output (_proto_graph.py).
    shape = tensor_pb2.TensorShapeProto(
        dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in (2, 3)]
    )
    return graph_pb2.GraphDef(
        node=[
            graph_pb2.NodeDef(
                name="input/x",
                op="IO Node",
                attr={
                    "_output_shapes": graph_pb2.AttrValue(
                        list=graph_pb2.AttrValue.ListValue(shape=[shape])
                    ),
                    "attr": graph_pb2.AttrValue(s=b""),
                },
            ),
            graph_pb2.NodeDef(
                name="Net/Linear[fc]/addmm",
                op="aten::addmm",
                input=["input/x", "^Net/init"],
                device="/device:CPU:0",
                attr={
                    "attr": graph_pb2.AttrValue(s=b"{ beta : 1, alpha : 1 }"),
                    "T": graph_pb2.AttrValue(type=tensor_pb2.DT_FLOAT),
                    "i": graph_pb2.AttrValue(i=0),
                    "f": graph_pb2.AttrValue(f=0.5),
                    "b": graph_pb2.AttrValue(b=True),
                    "value": graph_pb2.AttrValue(
                        tensor=tensor_pb2.TensorProto(dtype=tensor_pb2.DT_INT64, int64_val=[1, 2])
                    ),
                    "l": graph_pb2.AttrValue(
                        list=graph_pb2.AttrValue.ListValue(
                            s=[b"a"],
                            i=[1, -2],
                            f=[1.5],
                            b=[True, False],
                            type=[tensor_pb2.DT_HALF],
                            func=[
                                graph_pb2.NameAttrList(
                                    name="fn", attr={"k": graph_pb2.AttrValue(placeholder="T")}
                                )
                            ],
                        )
                    ),
                },
                experimental_debug_info=graph_pb2.NodeDef.ExperimentalDebugInfo(
                    original_node_names=["addmm"], original_func_names=["forward"]
                ),
            ),
        ],
        versions=graph_pb2.VersionDef(producer=22, min_consumer=12, bad_consumers=[3]),
    )


def _run_metadata() -> step_stats_pb2.RunMetadata:
    node_stats = step_stats_pb2.NodeExecStats(
        node_name="Net/Linear[fc]/addmm",
        all_start_micros=1000,
        op_start_rel_micros=1,
        op_end_rel_micros=30,
        all_end_rel_micros=31,
        memory=[
            step_stats_pb2.AllocatorMemoryUsed(
                allocator_name="cpu",
                total_bytes=4096,
                peak_bytes=4096,
                live_bytes=0,
                allocation_records=[
                    step_stats_pb2.AllocationRecord(alloc_micros=1001, alloc_bytes=4096)
                ],
                allocator_bytes_in_use=4096,
            )
        ],
        output=[
            step_stats_pb2.NodeOutput(
                slot=0,
                tensor_description=step_stats_pb2.TensorDescription(
                    dtype=tensor_pb2.DT_FLOAT,
                    shape=tensor_pb2.TensorShapeProto(
                        dim=[tensor_pb2.TensorShapeProto.Dim(size=4)]
                    ),
                    allocation_description=step_stats_pb2.AllocationDescription(
                        requested_bytes=16,
                        allocated_bytes=16,
                        allocator_name="cpu",
                        allocation_id=1,
                        has_single_reference=True,
                        ptr=2**40,
                    ),
                ),
            )
        ],
        timeline_label="addmm",
        scheduled_micros=999,
        thread_id=1,
        memory_stats=step_stats_pb2.MemoryStats(
            temp_memory_size=64, persistent_memory_size=128, persistent_tensor_alloc_ids=[1, 2]
        ),
        all_start_nanos=1_000_000,
        op_end_rel_nanos=30_000,
    )
    return step_stats_pb2.RunMetadata(
        step_stats=step_stats_pb2.StepStats(
            dev_stats=[
                step_stats_pb2.DeviceStepStats(
                    device="/device:CPU:0", node_stats=[node_stats], thread_names={1: "main"}
                )
            ]
        ),
        partition_graphs=[_graph_def()],
        function_graphs=[
            step_stats_pb2.RunMetadata.FunctionGraphs(pre_optimization_graph=_graph_def())
        ],
        session_metadata=step_stats_pb2.SessionMetadata(name="s", version=1),
    )


def _hparams_experiment() -> plugin_hparams_pb2.HParamsPluginData:
    hp = plugin_hparams_pb2
    return hp.HParamsPluginData(
        version=0,
        experiment=hp.Experiment(
            name="exp",
            description="d",
            user="u",
            time_created_secs=1.5,
            hparam_infos=[
                hp.HParamInfo(
                    name="lr",
                    type=hp.DATA_TYPE_FLOAT64,
                    domain_interval=hp.Interval(min_value=0.0, max_value=1.0),
                ),
                hp.HParamInfo(
                    name="opt",
                    display_name="optimizer",
                    description="which optimizer",
                    type=hp.DATA_TYPE_STRING,
                    domain_discrete=struct_pb2.ListValue(
                        values=[
                            struct_pb2.Value(string_value="adam"),
                            struct_pb2.Value(string_value="sgd"),
                        ]
                    ),
                    differs=True,
                ),
            ],
            metric_infos=[
                hp.MetricInfo(
                    name=hp.MetricName(group="val", tag="accuracy"),
                    display_name="acc",
                    description="top-1",
                    dataset_type=hp.DATASET_VALIDATION,
                )
            ],
        ),
    )


def _hparams_session_start() -> plugin_hparams_pb2.HParamsPluginData:
    hp = plugin_hparams_pb2
    return hp.HParamsPluginData(
        version=0,
        session_start_info=hp.SessionStartInfo(
            hparams={
                "lr": struct_pb2.Value(number_value=0.0),
                "opt": struct_pb2.Value(string_value="adam"),
                "bn": struct_pb2.Value(bool_value=False),
            },
            model_uri="m",
            monitor_url="u",
            group_name="g",
            start_time_secs=2.5,
        ),
    )


def _hparams_session_end() -> plugin_hparams_pb2.HParamsPluginData:
    hp = plugin_hparams_pb2
    return hp.HParamsPluginData(
        version=0, session_end_info=hp.SessionEndInfo(status=hp.STATUS_SUCCESS, end_time_secs=3.5)
    )


def _layout() -> plugin_custom_scalar_pb2.Layout:
    cs = plugin_custom_scalar_pb2
    return cs.Layout(
        version=0,
        category=[
            cs.Category(
                title="Taiwan",
                chart=[
                    cs.Chart(
                        title="twse", multiline=cs.MultilineChartContent(tag=["twse/0", "twse/1"])
                    )
                ],
            ),
            cs.Category(
                title="USA",
                closed=True,
                chart=[
                    cs.Chart(
                        title="dow",
                        margin=cs.MarginChartContent(
                            series=[
                                cs.MarginChartContent.Series(
                                    value="dow/aaa", lower="dow/bbb", upper="dow/ccc"
                                ),
                            ]
                        ),
                    )
                ],
            ),
        ],
    )


def _mesh() -> plugin_mesh_pb2.MeshPluginData:
    return plugin_mesh_pb2.MeshPluginData(
        version=0,
        name="my_mesh",
        content_type=plugin_mesh_pb2.MeshPluginData.FACE,
        json_config='{"camera": {}}',
        shape=[1, 200, 3],
        components=(1 << plugin_mesh_pb2.MeshPluginData.VERTEX)
        | (1 << plugin_mesh_pb2.MeshPluginData.FACE),
    )


def _projector() -> projector_config_pb2.ProjectorConfig:
    pc = projector_config_pb2
    return pc.ProjectorConfig(
        model_checkpoint_path="ckpt",
        model_checkpoint_dir="dir",
        embeddings=[
            pc.EmbeddingInfo(
                tensor_name="default:00000",
                metadata_path="00000/default/metadata.tsv",
                bookmarks_path="b.txt",
                tensor_shape=[100, 5],
                sprite=pc.SpriteMetadata(
                    image_path="00000/default/sprite.png", single_image_dim=[28, 28]
                ),
                tensor_path="00000/default/tensors.tsv",
            )
        ],
    )


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


# --------------------------------------------------------------------------
# (3) Descriptor-level correspondence with TensorBoard's schema.
# --------------------------------------------------------------------------


def _tb_name(full_name: str) -> str:
    """Map one of our full names to TensorBoard's (``summaryd.tb.X`` -> ``tensorboard.X``)."""
    if full_name.startswith(OUR_PACKAGE + "."):
        return TB_PACKAGE + full_name[len(OUR_PACKAGE) :]
    return full_name  # google.protobuf.* well-known types are shared.


def _walk_messages(msgs: Any) -> Iterator[descriptor.Descriptor]:
    for msg in msgs:
        yield msg
        yield from _walk_messages(msg.nested_types)


def _our_messages() -> list[descriptor.Descriptor]:
    return [
        m
        for mod in OUR_MODULES
        for m in _walk_messages(mod.DESCRIPTOR.message_types_by_name.values())
    ]


def _our_enums() -> list[descriptor.EnumDescriptor]:
    enums = [e for mod in OUR_MODULES for e in mod.DESCRIPTOR.enum_types_by_name.values()]
    return enums + [e for m in _our_messages() for e in m.enum_types]


def test_our_packages_do_not_collide_with_tensorboard() -> None:
    for mod in OUR_MODULES:
        assert (
            mod.DESCRIPTOR.name
            == f"summaryd/proto/{pathlib.Path(mod.__file__ or '').name[: -len('_pb2.py')]}.proto"
        )
        assert mod.DESCRIPTOR.package == OUR_PACKAGE or mod.DESCRIPTOR.package.startswith(
            OUR_PACKAGE + "."
        )
    pool = descriptor_pool.Default()
    for msg in _our_messages():
        assert pool.FindMessageTypeByName(msg.full_name) is msg
        assert pool.FindMessageTypeByName(_tb_name(msg.full_name)) is not msg


@pytest.mark.parametrize("ours", _our_messages(), ids=lambda m: m.full_name)
def test_message_matches_tensorboard(ours: descriptor.Descriptor) -> None:
    theirs = descriptor_pool.Default().FindMessageTypeByName(_tb_name(ours.full_name))
    assert ours.GetOptions().map_entry == theirs.GetOptions().map_entry
    for field in ours.fields:
        their_field = theirs.fields_by_number.get(field.number)
        assert their_field is not None, (
            f"{field.full_name}: no field {field.number} in {theirs.full_name}"
        )
        where = f"{field.full_name} vs {their_field.full_name}"
        assert field.name == their_field.name, where
        assert field.type == their_field.type, where
        assert field.is_repeated == their_field.is_repeated, where
        assert field.is_packed == their_field.is_packed, where
        assert field.has_presence == their_field.has_presence, where
        our_oneof = field.containing_oneof.name if field.containing_oneof else None
        their_oneof = their_field.containing_oneof.name if their_field.containing_oneof else None
        assert our_oneof == their_oneof, where
        if field.message_type is not None:
            assert _tb_name(field.message_type.full_name) == their_field.message_type.full_name, (
                where
            )
        if field.enum_type is not None:
            assert _tb_name(field.enum_type.full_name) == their_field.enum_type.full_name, where


@pytest.mark.parametrize("ours", _our_enums(), ids=lambda e: e.full_name)
def test_enum_matches_tensorboard(ours: descriptor.EnumDescriptor) -> None:
    theirs = descriptor_pool.Default().FindEnumTypeByName(_tb_name(ours.full_name))
    for value in ours.values:
        assert value.name in theirs.values_by_name, f"{value.name} missing in {theirs.full_name}"
        assert theirs.values_by_name[value.name].number == value.number, value.name


def test_required_coverage() -> None:
    """Messages and enum values the writer relies on are all defined."""
    names = {m.full_name for m in _our_messages()}
    expected = {
        "Event",
        "LogMessage",
        "SessionLog",
        "TaggedRunMetadata",
        "Summary",
        "Summary.Value",
        "Summary.Image",
        "Summary.Audio",
        "SummaryMetadata",
        "SummaryMetadata.PluginData",
        "HistogramProto",
        "TensorProto",
        "TensorShapeProto",
        "TensorShapeProto.Dim",
        "GraphDef",
        "NodeDef",
        "AttrValue",
        "AttrValue.ListValue",
        "NameAttrList",
        "VersionDef",
        "RunMetadata",
        "StepStats",
        "DeviceStepStats",
        "NodeExecStats",
        "AllocatorMemoryUsed",
        "NodeOutput",
        "MemoryStats",
        "TextPluginData",
        "PrCurvePluginData",
        "Layout",
        "Category",
        "Chart",
        "MultilineChartContent",
        "MarginChartContent",
        "MarginChartContent.Series",
        "hparams.HParamsPluginData",
        "hparams.Experiment",
        "hparams.HParamInfo",
        "hparams.MetricInfo",
        "hparams.MetricName",
        "hparams.SessionStartInfo",
        "hparams.SessionEndInfo",
        "hparams.Interval",
        "mesh.MeshPluginData",
        "projector.ProjectorConfig",
        "projector.EmbeddingInfo",
        "projector.SpriteMetadata",
    }
    assert {f"{OUR_PACKAGE}.{n}" for n in expected} <= names
    tb_dtypes = descriptor_pool.Default().FindEnumTypeByName("tensorboard.DataType")
    ours = {v.name for v in tensor_pb2.DataType.DESCRIPTOR.values}
    assert ours == {v.name for v in tb_dtypes.values if v.number <= tensor_pb2.DT_UINT64}
    assert summary_pb2.Summary.Value.DESCRIPTOR.oneofs_by_name["value"].fields
