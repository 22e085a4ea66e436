"""Messages of every kind, built with our ``summaryd.proto`` classes, for the wire tests.

Summaries and events, tensors and plugin metadata, graph defs (shaped like
torch's ``add_graph`` output) and run metadata, hparams experiments and
sessions, custom-scalar layouts, meshes and projector configs; a 1x1 PNG.
``test_proto_wire.py`` writes them with our classes and parses the bytes with
TensorBoard's.
"""

from __future__ import annotations

from google.protobuf import struct_pb2

from summaryd.proto import (
    event_pb2,
    graph_pb2,
    plugin_custom_scalar_pb2,
    plugin_hparams_pb2,
    plugin_mesh_pb2,
    projector_config_pb2,
    step_stats_pb2,
    summary_pb2,
    tensor_pb2,
)

PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


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
