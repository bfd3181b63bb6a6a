"""``python -m iretouch_bench`` is the ``iretouch-bench`` command."""

from .cli import main

main()
