"""The failure taxonomy the status machine acts on.

Every adapter translates its library's exceptions into one of these, so the processor can decide
between "retry later" and "give up now" without knowing boto3, psycopg or libvips.
"""


class MediaWorkerError(Exception):
    """Base of every error the worker raises on purpose."""


class PermanentError(MediaWorkerError):
    """Retrying cannot help: the row becomes FAILED and the message is deleted."""


class TransientError(MediaWorkerError):
    """Retrying later may help: the row goes back to PENDING while attempts remain."""


class UnsupportedMediaError(PermanentError):
    """The bytes are of a type the engine does not thumbnail."""


class CorruptMediaError(PermanentError):
    """The bytes claim a supported type but cannot be decoded."""


class LimitExceededError(PermanentError):
    """The input is larger than a configured limit (bytes, pixels, duration)."""


class ObjectTooLargeError(LimitExceededError):
    """An object longer than the caller's byte limit, refused before (or while) writing it.
    Whole downloads are of originals only, so the message names the setting to raise."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"original is {size} bytes, over the limit of {limit} "
                         "(MAX_INPUT_BYTES)")


class OriginalNotFoundError(PermanentError):
    """The original named by the row does not exist in storage."""


class ReadLimitExceededError(LimitExceededError):
    """Reading an original in place would fetch more than MAX_READ_BYTES: a file built (or
    muxed) so that a decoder reads most of it is refused rather than paid for."""


class TruncatedOriginalError(PermanentError):
    """The store holds fewer bytes than it announced for the original: every retry would find
    the same hole."""


class ConfigurationError(PermanentError):
    """The worker is misconfigured for this job (e.g. a remote engine rejects our signature)."""


class SchemaMissingError(MediaWorkerError):
    """The media table does not exist: found at start-up, before any job is taken."""


class StorageUnavailableError(TransientError):
    """Object storage could not be reached or answered with a server error."""


class OriginalChangedError(TransientError):
    """The original was replaced while it was being read in ranges: the bytes already read
    belong to another version. A later attempt reads the new version from the start."""


class RepositoryUnavailableError(TransientError):
    """The media database could not be reached."""


class QueueUnavailableError(TransientError):
    """The queue could not be reached."""


class EngineUnavailableError(TransientError):
    """A remote thumbnail engine could not be reached, timed out or is overloaded."""


class JobTimeoutError(LimitExceededError):
    """Rendering ran past JOB_TIMEOUT_SECONDS: a limit like the others, so permanent (the
    decoder process was killed; the same bytes would take as long again)."""
