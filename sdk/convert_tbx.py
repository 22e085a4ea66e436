"""tensorboardX's summaries that differ from torch's, built in the trainer with summaryd.proto.

``summaryd.tensorboardx.SummaryWriter`` sends most calls through summaryd's
records, whose encoders in the daemon write torch's events.  What tensorboardX
writes differently, and no encoder produces, is built here as protobuf
messages with summaryd's own schema (``summaryd.proto``) and shipped by the
writer as raw events: ``add_scalar``'s ``display_name`` and
``summary_description``, tensorboardX's ``add_hparams`` (its typing rules),
``add_mesh`` (tags ``<tag>_1/2/3``), ``add_graph``'s run metadata (tagged
``profiler``) and stereo ``add_audio``.  Also here: tensorboardX's argument
conversions (``_clean_tag``, ``make_np``, ``scalar()``, video ``dataformats``).

Kept apart from ``tensorboardx.py`` so that the writer module holds only the
facade (signatures, defaults, routing) and these stay pure: they take
arguments and return messages or values, never touch a writer, and raise at
the call site as ``convert.py``'s functions do.  numpy, torch and the
protobuf modules are imported on first use.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from . import convert
from .errors import ArgumentShapeError, ArgumentTypeError

# The name of the module users import (the one that logged this before the split).
logger = logging.getLogger("summaryd.tensorboardx")

# tensorboardX's summary._INVALID_TAG_CHARACTERS.
_INVALID_TAG_CHARACTERS = re.compile(r"[^-/\w\.]")


def clean_tag(name: str) -> str:
    """tensorboardX's ``_clean_tag``: illegal characters to ``_``, leading slashes dropped."""
    new_name = _INVALID_TAG_CHARACTERS.sub("_", name).lstrip("/")
    if new_name != name:
        logger.info("Summary name %s is illegal; using %s instead.", name, new_name)
    return new_name


def cleaned_tag(tag: Any, name: str = "tag") -> str:
    """``tag`` validated as torch's, then cleaned as tensorboardX's."""
    return clean_tag(convert.to_tag(tag, name))


def make_np(x: Any, name: str) -> Any:
    """tensorboardX's ``make_np`` (numbers wrapped, tensors to numpy)."""
    return convert._make_np(x, name)


def scalar(value: Any, name: str) -> float:
    """tensorboardX's ``scalar()`` conversion: one element after squeeze, as a float."""
    arr = make_np(value, name).squeeze()
    if arr.ndim != 0:
        raise ArgumentShapeError(f"{name}: scalar should be 0D, got shape {arr.shape}")
    try:
        return float(arr)
    except (TypeError, ValueError) as exc:
        convert.reraise(exc, name, "a real number")


def scalar_summary(tag: Any, value: Any, display_name: Any, summary_description: Any) -> Any:
    """tensorboardX's ``summary.scalar`` with ``display_name``/``summary_description`` set
    in the value's ``SummaryMetadata`` (no encoder of summaryd's writes that)."""
    from .proto import summary_pb2

    name = cleaned_tag(tag)
    simple_value = scalar(value, "scalar_value")
    md = summary_pb2.SummaryMetadata(
        display_name=convert.to_str(display_name or "", "display_name"),
        summary_description=convert.to_str(summary_description or "", "summary_description"),
    )
    return summary_pb2.Summary(
        value=[summary_pb2.Summary.Value(tag=name, simple_value=simple_value, metadata=md)]
    )


def video_to_ntchw(vid_tensor: Any, dataformats: Any) -> Any:
    """``vid_tensor`` permuted from ``dataformats`` (tensorboardX's) to NTCHW (torch's)."""
    fmt = convert.to_str(dataformats, "dataformats").upper()
    if fmt == "NTCHW":
        return vid_tensor
    v = make_np(vid_tensor, "vid_tensor")
    if len(fmt) != 5 or set(fmt) != set("NTCHW") or v.ndim != 5:
        raise ArgumentShapeError(
            f"dataformats: expected a permutation of NTCHW matching the tensor's "
            f"5 dimensions, got {dataformats!r} for shape {v.shape}"
        )
    return v.transpose([fmt.find(ch) for ch in "NTCHW"])


def hparams_summaries(hparam_dict: dict[str, Any], metric_dict: dict[str, Any]) -> list[Any]:
    """tensorboardX's ``summary.hparams``: experiment, session start and end, in this order."""
    from .proto import plugin_hparams_pb2 as hp
    from .proto import summary_pb2

    hps = []
    ssi = hp.SessionStartInfo()
    for k, v in hparam_dict.items():
        k = convert.to_str(k, "hparam_dict key")
        if v is None:
            continue
        if isinstance(v, str):
            ssi.hparams[k].string_value = v
            kind = hp.DATA_TYPE_STRING
        elif isinstance(v, bool):
            ssi.hparams[k].bool_value = v
            kind = hp.DATA_TYPE_BOOL
        elif isinstance(v, (int, float)):
            ssi.hparams[k].number_value = float(v)
            kind = hp.DATA_TYPE_FLOAT64
        elif callable(v):
            ssi.hparams[k].string_value = getattr(v, "__name__", str(v))
            kind = hp.DATA_TYPE_STRING
        else:  # tensorboardX lists it, untyped, without a value
            kind = hp.DATA_TYPE_UNSET
        hps.append(hp.HParamInfo(name=k, type=kind))
    mts = [
        hp.MetricInfo(name=hp.MetricName(tag=convert.to_str(k, "metric_dict key")))
        for k in metric_dict
    ]
    sei = hp.SessionEndInfo(status=hp.STATUS_SUCCESS)
    out = []
    for tag, data in (
        (
            "_hparams_/experiment",
            hp.HParamsPluginData(
                experiment=hp.Experiment(hparam_infos=hps, metric_infos=mts), version=0
            ),
        ),
        ("_hparams_/session_start_info", hp.HParamsPluginData(session_start_info=ssi, version=0)),
        ("_hparams_/session_end_info", hp.HParamsPluginData(session_end_info=sei, version=0)),
    ):
        md = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(
                plugin_name="hparams", content=data.SerializeToString()
            )
        )
        out.append(summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, metadata=md)]))
    return out


def mesh(tag: str, vertices: Any, colors: Any, faces: Any, config_dict: Any) -> Any:
    """tensorboardX's ``summary.mesh``: one value ``<tag>_<content type>`` per tensor given."""
    from .proto import plugin_mesh_pb2, summary_pb2, tensor_pb2

    try:
        json_config = json.dumps(config_dict, sort_keys=True)
    except (TypeError, ValueError) as exc:
        convert.reraise(exc, "config_dict", "a JSON-serialisable dict")
    values = []
    for name, tensor, content_type in (
        ("vertices", vertices, 1),
        ("faces", faces, 2),
        ("colors", colors, 3),
    ):
        if tensor is None:
            continue
        arr = make_np(tensor, name)
        if arr.ndim != 3:
            raise ArgumentShapeError(f"{name}: expected shape (B, N, 3), got {arr.shape}")
        try:
            floats = arr.astype("float32").reshape(-1).tolist()
        except (TypeError, ValueError) as exc:
            convert.reraise(exc, name, "numbers")
        content = plugin_mesh_pb2.MeshPluginData(
            version=0,
            name=tag,
            content_type=content_type,
            json_config=json_config,
            shape=list(arr.shape),
        ).SerializeToString()
        md = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="mesh", content=content)
        )
        shape = tensor_pb2.TensorShapeProto(
            dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in arr.shape]
        )
        t = tensor_pb2.TensorProto(dtype=tensor_pb2.DT_FLOAT, float_val=floats, tensor_shape=shape)
        values.append(summary_pb2.Summary.Value(tag=f"{tag}_{content_type}", tensor=t, metadata=md))
    return summary_pb2.Summary(value=values)


def stereo_audio(tag: str, arr: Any, sample_rate: Any) -> Any:
    """A two-channel WAV summary (16-bit PCM, torch's sample scaling), built in the trainer."""
    import io
    import wave

    import numpy as np

    from .proto import summary_pb2

    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float)):
        raise ArgumentTypeError(f"sample_rate: expected a number, got {type(sample_rate).__name__}")
    arr = arr.astype(np.float64)
    if np.abs(arr).max(initial=0.0) > 1:
        print("warning: audio amplitude out of range, auto clipped.")
        arr = arr.clip(-1, 1)
    pcm = (arr * np.iinfo(np.int16).max).astype("<i2")
    with io.BytesIO() as fio:
        with wave.open(fio, "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(int(sample_rate))
            wav.writeframes(pcm.tobytes())
        data = fio.getvalue()
    audio = summary_pb2.Summary.Audio(
        sample_rate=float(sample_rate),
        num_channels=2,
        length_frames=len(arr),
        encoded_audio_string=data,
        content_type="audio/wav",
    )
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, audio=audio)])


def graph_events(
    model: Any, input_to_model: Any, verbose: bool, use_strict_trace: bool
) -> tuple[Any, Any]:
    """tensorboardX's graph events: the ``GraphDef`` traced by torch's code, and its run
    metadata tagged ``profiler`` (torch tags it ``step1``)."""
    from torch.utils.tensorboard._pytorch_graph import graph

    from .proto import event_pb2

    graph_def, stepstats = graph(  # type: ignore[no-untyped-call]
        model, input_to_model, verbose, use_strict_trace
    )
    trm = event_pb2.TaggedRunMetadata(tag="profiler", run_metadata=stepstats.SerializeToString())
    return (
        event_pb2.Event(graph_def=graph_def.SerializeToString()),
        event_pb2.Event(tagged_run_metadata=trm),
    )
