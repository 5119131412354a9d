"""The thumbnail engine port and its adapters (in-process libvips/FFmpeg, imagor protocol)."""
