"""The imagor-protocol engine: thumbnails rendered by imagorvideo, imagor or Thumbor.

`engine.py` composes the parts; see its docstring for the layout.
"""

from media_worker.engines.imagor.engine import ImagorEngine

__all__ = ["ImagorEngine"]
