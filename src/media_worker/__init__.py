"""media-worker: turns uploaded images and videos into thumbnails."""

__version__ = "0.1.0"
