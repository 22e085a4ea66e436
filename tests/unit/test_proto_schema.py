"""The ``summaryd.proto`` schema: fresh generated code, and TensorBoard's schema matched.

* the committed ``*_pb2.py`` / ``*_pb2.pyi`` modules match a fresh
  ``proto/generate.py`` run;
* every message and enum we define has a TensorBoard counterpart with the same
  field names, numbers, types, cardinality, oneofs and presence, and our
  package names never collide with TensorBoard's. This is the test that ties
  our schema to TensorBoard's; ``test_proto_wire.py`` checks the bytes.
"""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor, descriptor_pool

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
