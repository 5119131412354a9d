"""Where the engine imported its BlurHash from before the placeholders got a package of their
own (`placeholders/`); kept so `local.py` goes on working until its import moves there."""

from media_worker.engines.placeholders.blurhash import blurhash_of

__all__ = ["blurhash_of"]
