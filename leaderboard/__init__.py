"""Data only: the paper's published tables, the shipped submissions and the result schema.

Installed as ``iretouch_bench.leaderboard`` (pyproject package-dir) so ``iretouch-bench tables``
and ``iretouch-bench leaderboard`` find them from any directory; read through
:mod:`iretouch_bench.reporting.shipped`.
"""
