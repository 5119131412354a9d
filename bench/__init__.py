"""Side-by-side benchmarks of media-worker against its anchors (vipsthumbnail, a naive Pillow
pipeline, Thumbor, ffmpeg, tjbench) and of the whole pipeline through S3, SQS and PostgreSQL.

Run `.venv/bin/python -m bench.run [--quick] [--only NAME]`; see docs/performance.md.
"""
