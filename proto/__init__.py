"""TensorBoard-compatible protobuf messages, under our own package ``summaryd.tb``.

The ``.proto`` files here mirror the names, field numbers and types that
TensorBoard reads (``tensorboard/compat/proto`` and the plugin data protos),
so our bytes parse identically with TensorBoard's classes, while the distinct
proto package keeps both descriptor sets loadable in one process.

The ``*_pb2.py`` / ``*_pb2.pyi`` modules are generated; after editing a
``.proto`` file, regenerate them from the repository root with::

    python proto/generate.py
"""
