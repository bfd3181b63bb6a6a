"""iretouch-bench: evaluation suite for instruction-guided photo retouching.

The flow of a run (see DESIGN.md):

    data (Samples) -> registry (model adapter) -> runner.generate (outputs/)
        -> runner.score (metrics, judge, identity) -> runner.aggregate (summary, table)
"""

__version__ = "0.1.0"
