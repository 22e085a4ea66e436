"""Encoders for audio (WAV), custom scalars, meshes and hparams.

Each function: ``(tag, params, arrays) -> list of Summary``; see
``encode.MEDIA_ENCODERS``.  Pure and deterministic; each builds what torch
2.13's ``summary.audio``, ``custom_scalars``, ``mesh`` and ``hparams``
(``torch/utils/tensorboard/summary.py``) build for the same call, from the
params ``sdk/convert_plugins.py`` produces (its module docstring lists them).

Records come from untrusted clients: every params field and array is checked
(type, dtype, rank, sizes, consistency) before use, and anything malformed
raises TypeError or ValueError, never something else.  Output size is
proportional to the record (at most 4 bytes per input byte, for a mesh of
uint8 colors as float32).
"""

from __future__ import annotations

import io
import wave
from collections.abc import Mapping
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from summaryd.proto import (
    plugin_custom_scalar_pb2,
    plugin_hparams_pb2,
    plugin_mesh_pb2,
    summary_pb2,
    tensor_pb2,
)

Summary = summary_pb2.Summary
SummaryMetadata = summary_pb2.SummaryMetadata

_U32 = 0xFFFFFFFF


# -- record checks -------------------------------------------------------------------------


def _fields(kind: str, params: Any, spec: Mapping[str, type | tuple[type, ...]]) -> list[Any]:
    """The values of ``spec``'s keys, each of an exact listed type (no bool for int)."""
    if type(params) is not dict:
        raise TypeError(f"{kind}: params must be a dict, got {type(params).__name__}")
    out = []
    for key, types in spec.items():
        if key not in params:
            raise ValueError(f"{kind}: params lack {key!r}")
        value = params[key]
        allowed = types if isinstance(types, tuple) else (types,)
        if type(value) not in allowed:
            raise TypeError(f"{kind}: params[{key!r}] must be {types}, got {type(value).__name__}")
        out.append(value)
    return out


def _check_tag(kind: str, tag: Any) -> str:
    if type(tag) is not str:
        raise TypeError(f"{kind}: tag must be str, got {type(tag).__name__}")
    return tag


def _arrays(kind: str, arrays: Any, n: int) -> list[np.ndarray]:
    if type(arrays) is not list or len(arrays) != n:
        raise ValueError(f"{kind}: expected a list of {n} arrays")
    for a in arrays:
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{kind}: arrays must be numpy arrays, got {type(a).__name__}")
    return arrays


def _str_list(kind: str, value: Any, what: str) -> list[str]:
    if type(value) is not list or any(type(s) is not str for s in value):
        raise TypeError(f"{kind}: {what} must be a list of str")
    return value


# Real dtypes a record may carry, native byte order (the transport's set minus complex).
_REAL = frozenset(
    np.dtype(t) for t in ("?", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
)


# -- audio ---------------------------------------------------------------------------------

# The fast-path sample dtypes convert_plugins.audio ships unscaled (int8/uint8: torch raises).
_AUDIO_DTYPES = frozenset(
    np.dtype(t) for t in ("?", "i2", "i4", "i8", "u2", "u4", "u8", "f2", "f4", "f8")
)
_INT16_MAX = int(np.iinfo(np.int16).max)


def _wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM, written with ``wave`` exactly as torch's ``summary.audio`` writes it."""
    fio = io.BytesIO()
    with wave.open(fio, "wb") as wave_write:
        wave_write.setnchannels(1)
        wave_write.setsampwidth(2)
        wave_write.setframerate(rate)
        wave_write.writeframes(samples.data)
    return fio.getvalue()


def audio(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """AUDIO: torch's ``summary.audio``: clip, ``(x * 32767).astype("<i2")``, WAV, Summary.Audio.

    The scaling runs on the dtype the trainer had (float16 rounds 32767 up to
    32768 and wraps, as in torch); ``clip`` is the trainer's
    ``abs(x).max() > 1``.  ``pcm`` records carry final int16 samples (dtypes
    the trainer converted itself).  ``Audio.sample_rate`` is the float the
    user passed, the WAV header its ``int(round())``.
    """
    kind = "AUDIO"
    tag = _check_tag(kind, tag)
    rate, sample_rate, clip, pcm = _fields(
        kind,
        params,
        {"rate": int, "sample_rate": (float, int), "clip": bool, "pcm": bool},
    )
    if not 1 <= rate <= _U32 // 2:
        raise ValueError(f"{kind}: frame rate {rate} outside 1..2**31-1")
    if not 0 < sample_rate < 2**32:  # NaN fails too
        raise ValueError(f"{kind}: sample_rate {sample_rate} out of range")
    (arr,) = _arrays(kind, arrays, 1)
    if arr.ndim != 1 or arr.size == 0 or 36 + 2 * arr.size > _U32:
        raise ValueError(f"{kind}: samples must be 1-D, non-empty, under 2**31, got {arr.shape}")
    if not arr.dtype.isnative:
        raise ValueError(f"{kind}: samples must be in native byte order")
    if pcm:
        if arr.dtype != np.int16:
            raise ValueError(f"{kind}: pcm samples must be int16, got {arr.dtype}")
        samples = arr.astype("<i2")
    else:
        if arr.dtype not in _AUDIO_DTYPES:
            raise ValueError(f"{kind}: unsupported sample dtype {arr.dtype}")
        with np.errstate(all="ignore"):  # NaN and float16 overflow cast as in torch, silently
            if clip:
                arr = arr.clip(-1, 1)
            samples = (arr * _INT16_MAX).astype("<i2")
    audio = Summary.Audio(
        sample_rate=sample_rate,
        num_channels=1,
        length_frames=samples.shape[-1],
        encoded_audio_string=_wav(samples, rate),
        content_type="audio/wav",
    )
    return [Summary(value=[Summary.Value(tag=tag, audio=audio)])]


# -- custom scalars ------------------------------------------------------------------------

# torch writes the layout under this fixed tag (the custom scalars plugin's CONFIG_SUMMARY_TAG).
CUSTOM_SCALARS_TAG = "custom_scalars__config__"


def _chart(kind: str, spec: Any) -> Any:
    if type(spec) is not list or len(spec) != 3:
        raise ValueError(f"{kind}: a chart must be [title, margin, tags]")
    title, margin, tags = spec
    if type(title) is not str or type(margin) is not bool:
        raise TypeError(f"{kind}: a chart's title must be str and margin bool")
    tags = _str_list(kind, tags, "chart tags")
    pb = plugin_custom_scalar_pb2
    if margin:
        if len(tags) != 3:
            raise ValueError(f"{kind}: a margin chart has 3 tags, got {len(tags)}")
        series = pb.MarginChartContent.Series(value=tags[0], lower=tags[1], upper=tags[2])
        return pb.Chart(title=title, margin=pb.MarginChartContent(series=[series]))
    return pb.Chart(title=title, multiline=pb.MultilineChartContent(tag=tags))


def custom_scalars(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """CUSTOM_SCALARS: torch's ``summary.custom_scalars``: the Layout as a DT_STRING tensor.

    Written under ``custom_scalars__config__`` whatever ``tag`` the record
    carries (torch's writer has no tag argument); the tensor has an empty but
    present ``tensor_shape``, as torch sets it.
    """
    kind = "CUSTOM_SCALARS"
    _check_tag(kind, tag)
    (layout,) = _fields(kind, params, {"layout": list})
    _arrays(kind, arrays, 0)
    pb = plugin_custom_scalar_pb2
    categories = []
    for cat in layout:
        if type(cat) is not list or len(cat) != 2:
            raise ValueError(f"{kind}: a category must be [title, charts]")
        title, charts = cat
        if type(title) is not str or type(charts) is not list:
            raise TypeError(f"{kind}: a category must be [str, list]")
        categories.append(pb.Category(title=title, chart=[_chart(kind, c) for c in charts]))
    serialized = pb.Layout(category=categories).SerializeToString()
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="custom_scalars"))
    tensor = tensor_pb2.TensorProto(
        dtype=tensor_pb2.DT_STRING,
        string_val=[serialized],
        tensor_shape=tensor_pb2.TensorShapeProto(),
    )
    value = Summary.Value(tag=CUSTOM_SCALARS_TAG, tensor=tensor, metadata=meta)
    return [Summary(value=[value])]


# -- mesh ----------------------------------------------------------------------------------

_MESH = plugin_mesh_pb2.MeshPluginData
_CONTENT_NAMES = {_MESH.VERTEX: "VERTEX", _MESH.FACE: "FACE", _MESH.COLOR: "COLOR"}


def _float_val(arr: np.ndarray) -> bytes:
    """``float_val`` (field 5, packed) as torch's ``float_val=t.reshape(-1).tolist()`` fills it.

    protobuf converts each Python number to double (an int64 rounds there
    first), then casts to float32: ``astype(float64).astype(float32)`` is the
    same rounding twice, done at C speed; the packed bytes are then merged
    into the TensorProto.
    """
    with np.errstate(all="ignore"):  # beyond float32 range: inf, as protobuf's C cast
        f32 = arr.astype(np.float64).astype("<f4")
    data = f32.tobytes()
    n = len(data)
    length = bytearray()
    while n > 0x7F:
        length.append((n & 0x7F) | 0x80)
        n >>= 7
    length.append(n)
    return b"\x2a" + bytes(length) + data


def mesh(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """MESH: torch's ``summary.mesh``: one Summary, one value per part present.

    Values ``<tag>_VERTEX``, ``<tag>_FACE``, ``<tag>_COLOR`` (in that order,
    absent parts skipped), each a DT_FLOAT tensor of the part's 3-D shape whose
    metadata holds ``MeshPluginData`` (name, content type, the bitmask of all
    parts present, shape, ``json_config``), as tensorboard's
    ``mesh.metadata.create_summary_metadata`` builds it for torch.  Params
    ``name``/``prefix``, when present, replace the tag in the plugin data and
    in the values' tags (torch writes ``None_VERTEX`` for a None tag).
    """
    kind = "MESH"
    tag = _check_tag(kind, tag)
    json_config, parts = _fields(kind, params, {"json_config": str, "parts": list})
    name, prefix = tag, tag
    if "name" in params or "prefix" in params:  # torch's spellings of a None or bytes tag
        name, prefix = _fields(kind, params, {"name": str, "prefix": str})
    if any(type(p) is not int for p in parts) or parts != sorted(set(parts)):
        raise ValueError(f"{kind}: parts must be increasing content types")
    if not set(parts) <= set(_CONTENT_NAMES):
        raise ValueError(f"{kind}: unknown content type in {parts}")
    arrays = _arrays(kind, arrays, len(parts))
    components = 0
    for p in parts:
        components |= 1 << p
    values = []
    for content, arr in zip(parts, arrays, strict=True):
        if arr.ndim != 3:
            raise ValueError(f"{kind}: mesh parts are B x N x 3 arrays, got shape {arr.shape}")
        if arr.dtype not in _REAL:
            raise ValueError(f"{kind}: unsupported dtype {arr.dtype}")
        shape = [int(d) for d in arr.shape]
        if max(shape) > 0x7FFFFFFF:
            raise ValueError(f"{kind}: dimension beyond int32 in {shape}")
        plugin = _MESH(
            version=0,
            name=name,
            content_type=content,
            components=components,
            shape=shape,
            json_config=json_config,
        )
        meta = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="mesh", content=plugin.SerializeToString()
            )
        )
        tensor = tensor_pb2.TensorProto(
            dtype=tensor_pb2.DT_FLOAT,
            tensor_shape=tensor_pb2.TensorShapeProto(
                dim=[tensor_pb2.TensorShapeProto.Dim(size=d) for d in shape]
            ),
        )
        if arr.size:
            tensor.MergeFromString(_float_val(arr))
        values.append(
            Summary.Value(tag=f"{prefix}_{_CONTENT_NAMES[content]}", tensor=tensor, metadata=meta)
        )
    return [Summary(value=values)]


# -- hparams -------------------------------------------------------------------------------

# tensorboard.plugins.hparams.metadata: the plugin name, data version and the three tags.
HPARAMS_PLUGIN = "hparams"
EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"

_HP = plugin_hparams_pb2


def _hparams_summary(tag: str, data: Any) -> Any:
    # deterministic: SessionStartInfo.hparams is a map, which upb otherwise serializes in
    # a per-process hash order (torch's own bytes differ from run to run); sorted keys here.
    content = data.SerializeToString(deterministic=True)
    meta = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name=HPARAMS_PLUGIN, content=content)
    )
    return Summary(value=[Summary.Value(tag=tag, metadata=meta)])


def _domain(kind: str, vtype: str, domain: Any) -> Any:
    if domain is None:
        return None
    if type(domain) is not list:
        raise TypeError(f"{kind}: a domain must be a list or None")
    if vtype == "number":
        if any(type(d) is not float for d in domain):
            raise TypeError(f"{kind}: a number domain holds floats")
        return struct_pb2.ListValue(values=[struct_pb2.Value(number_value=d) for d in domain])
    _str_list(kind, domain, "a string domain")
    return struct_pb2.ListValue(values=[struct_pb2.Value(string_value=d) for d in domain])


def hparams(tag: str, params: dict[str, Any], arrays: list[np.ndarray]) -> list[Any]:
    """HPARAMS: torch's ``summary.hparams``: ``[experiment, session_start_info, session_end_info]``.

    Three Summaries (torch's writer adds each as its own event, at the call's
    step), each one metadata-only value under the plugin's fixed tag.  Numbers
    are DATA_TYPE_FLOAT64 (bools and tensors among them), strings
    DATA_TYPE_STRING; a domain, when given, is ``domain_discrete`` (an empty
    list stays an empty, present ListValue).  The session ends STATUS_SUCCESS.
    ``tag`` is not used: torch's tags are fixed.
    """
    kind = "HPARAMS"
    _check_tag(kind, tag)
    entries, metrics = _fields(kind, params, {"hparams": list, "metrics": list})
    _str_list(kind, metrics, "metrics")
    _arrays(kind, arrays, 0)
    infos = []
    ssi = _HP.SessionStartInfo()
    for entry in entries:
        if type(entry) is not list or len(entry) != 4:
            raise ValueError(f"{kind}: an hparam must be [name, type, value, domain]")
        name, vtype, value, domain = entry
        if type(name) is not str:
            raise TypeError(f"{kind}: an hparam name must be str")
        if vtype == "number" and type(value) is float:
            ssi.hparams[name].number_value = value
            dtype = _HP.DATA_TYPE_FLOAT64
        elif vtype == "string" and type(value) is str:
            ssi.hparams[name].string_value = value
            dtype = _HP.DATA_TYPE_STRING
        else:
            raise TypeError(f"{kind}: hparam {name!r}: bad type/value pair")
        infos.append(
            _HP.HParamInfo(name=name, type=dtype, domain_discrete=_domain(kind, vtype, domain))
        )
    metric_infos = [_HP.MetricInfo(name=_HP.MetricName(tag=m)) for m in metrics]
    exp = _HP.Experiment(hparam_infos=infos, metric_infos=metric_infos)
    sei = _HP.SessionEndInfo(status=_HP.STATUS_SUCCESS)
    return [
        _hparams_summary(EXPERIMENT_TAG, _HP.HParamsPluginData(experiment=exp, version=0)),
        _hparams_summary(
            SESSION_START_INFO_TAG, _HP.HParamsPluginData(session_start_info=ssi, version=0)
        ),
        _hparams_summary(
            SESSION_END_INFO_TAG, _HP.HParamsPluginData(session_end_info=sei, version=0)
        ),
    ]
