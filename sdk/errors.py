"""Exceptions raised by summaryd.

The tree::

    SummarydError                       base of everything summaryd raises
    ├── InvalidArgumentError            bad argument to a public call
    │   ├── ArgumentTypeError           (also TypeError)  wrong type, e.g. a tag that is not str
    │   │   └── ArgumentAttributeError  (also AttributeError) where torch calls a str or
    │   │                               dict method on the argument and fails
    │   ├── ArgumentValueError          (also ValueError) right type, unusable value
    │   ├── ArgumentRangeError          (also OverflowError) a number out of range
    │   ├── ArgumentEncodingError       (also UnicodeEncodeError) text UTF-8 cannot encode
    │   ├── ScalarShapeError            (also ValueError, AssertionError) more than one element
    │   │                               where torch asserts "scalar should be 0D"
    │   ├── ArgumentShapeError          (also ValueError, AssertionError) an array of the wrong
    │   │                               shape or layout where torch asserts (dataformats, ...)
    │   ├── ArgumentIndexError          (also ValueError, IndexError) torch indexes a too-short
    │   │                               shape or list
    │   ├── ArgumentKeyError            (also ValueError, KeyError) a mapping lacks a key torch
    │   │                               looks up
    │   ├── ArgumentZeroDivisionError   (also ValueError, ZeroDivisionError) torch divides by an
    │   │                               empty size
    │   ├── UnsupportedLogDirError      (also ValueError) a log_dir URL other than s3://
    │   ├── ArgumentDecodingError       (also UnicodeDecodeError) bytes that are not UTF-8
    │   ├── (convert_plugins.SampleRateError, WaveHeaderRangeError: also wave.Error /
    │   │    struct.error, defined there so that ``import summaryd`` does not load ``wave``)
    │   └── UnsupportedValueError       (also NotImplementedError) an object torch's make_np
    │                                   refuses (neither number, array nor tensor)
    ├── UnsupportedFeatureError         (also NotImplementedError) a feature of the writer
    │                                   summaryd replaces that it does not offer (tensorboardX's
    │                                   Comet upload)
    ├── S3Error                         an s3:// log dir: .bucket and .cause say where and why
    │   ├── S3ExtraMissingError         (also ImportError) boto3 missing: pip install summaryd[s3]
    │   ├── S3UrlError                  (also ValueError) not s3://bucket/prefix
    │   ├── S3AccessError               no such bucket, credentials refused or missing
    │   └── S3UnavailableError          the store did not answer (transient; retried)
    ├── DaemonUnavailableError          no daemon answered within the bound (CLI, explicit waits)
    ├── ProtocolError                   a message or ring record that does not decode
    └── RuntimeDirError                 the runtime directory is unsafe (symlink, other owner, mode)

Logging calls never raise because the daemon is slow or gone: they warn
(``SummarydWarning`` and its subclasses) and count what they drop.  The
argument errors subclass the builtin that torch raises for the same input, so
code written against torch keeps catching them.  There is no "writer closed"
error: like torch's, a closed writer re-opens when it is used again.
"""

from __future__ import annotations


class SummarydError(Exception):
    """Base class of every exception raised by summaryd."""


class InvalidArgumentError(SummarydError):
    """An argument of a public call is unusable; the message names it."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type."""


class ArgumentAttributeError(ArgumentTypeError, AttributeError):
    """An argument lacks what torch calls on it (a str or dict method): also AttributeError."""


class ArgumentValueError(InvalidArgumentError, ValueError):
    """An argument has the right type but an unusable value."""


class ArgumentRangeError(InvalidArgumentError, OverflowError):
    """A number does not fit (a float beyond double range, a step beyond int64)."""


class ArgumentEncodingError(InvalidArgumentError, UnicodeEncodeError):
    """A string argument cannot be encoded as UTF-8 (e.g. a lone surrogate)."""

    def __init__(self, name: str, exc: UnicodeEncodeError) -> None:
        UnicodeEncodeError.__init__(
            self, exc.encoding, exc.object, exc.start, exc.end, f"{name}: {exc.reason}"
        )


class ScalarShapeError(InvalidArgumentError, ValueError, AssertionError):
    """A scalar argument holds more than one element (torch raises AssertionError)."""


class ArgumentShapeError(InvalidArgumentError, ValueError, AssertionError):
    """An array argument has the wrong shape, rank or layout (torch asserts on it)."""


class ArgumentIndexError(InvalidArgumentError, ValueError, IndexError):
    """torch indexes a shape or a list that is too short (torch: IndexError)."""


class ArgumentKeyError(InvalidArgumentError, ValueError, KeyError):
    """torch subscripts a mapping argument with a key it lacks (torch: KeyError)."""

    def __str__(self) -> str:  # KeyError quotes its argument; a message should read plainly
        return str(self.args[0]) if self.args else ""


class ArgumentZeroDivisionError(InvalidArgumentError, ValueError, ZeroDivisionError):
    """torch divides by an empty dimension or a zero count (torch: ZeroDivisionError)."""


class ArgumentDecodingError(InvalidArgumentError, UnicodeDecodeError):
    """A bytes argument that protobuf decodes as UTF-8 is not UTF-8 (torch: UnicodeDecodeError)."""

    def __init__(self, name: str, exc: UnicodeDecodeError) -> None:
        UnicodeDecodeError.__init__(
            self, exc.encoding, exc.object, exc.start, exc.end, f"{name}: {exc.reason}"
        )


class UnsupportedValueError(InvalidArgumentError, NotImplementedError):
    """A value is neither a number, an array nor a tensor (torch: NotImplementedError)."""


class UnsupportedFeatureError(SummarydError, NotImplementedError):
    """A feature of the replaced writer that summaryd does not offer; the message says why."""


class DaemonUnavailableError(SummarydError):
    """No summaryd daemon answered within the time allowed."""


class ProtocolError(SummarydError, ValueError):
    """Bytes from a peer or a ring do not form a valid message or record."""


class RuntimeDirError(SummarydError, PermissionError):
    """The runtime directory is not safe to use (symlink, foreign owner, open mode)."""


class UnsupportedLogDirError(InvalidArgumentError, ValueError):
    """``log_dir`` is a URL whose scheme summaryd does not write (only ``s3://``)."""


class S3Error(SummarydError):
    """Base of the ``s3://`` errors; ``bucket`` and ``cause`` say where and why."""

    def __init__(self, message: str, bucket: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.bucket = bucket
        self.cause = cause


class S3ExtraMissingError(S3Error, ImportError):
    """boto3 is not installed; the message names the extra that brings it."""


class S3UrlError(S3Error, ValueError):
    """Not a usable ``s3://bucket/prefix`` URL (also ValueError, as torch's checks raise)."""


class S3AccessError(S3Error):
    """The store refuses us for good: no such bucket, wrong or missing credentials."""


class S3UnavailableError(S3Error):
    """The store did not answer usefully (retry later; nothing is lost)."""


class SummarydWarning(UserWarning):
    """Base class of warnings summaryd emits in the logging process."""


class RecordsDroppedWarning(SummarydWarning):
    """Records were dropped because the ring stayed full (daemon gone or too slow)."""


class DaemonNoticeWarning(SummarydWarning):
    """The daemon reported a problem with this process's records (e.g. a malformed record)."""
