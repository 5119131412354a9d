"""`python -m media_worker` is the `media-worker` command."""

from media_worker.cli import main

main()
