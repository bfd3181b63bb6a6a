"""``python -m iretouch_bench.cli`` is the ``iretouch-bench`` command."""

from . import main

main()
