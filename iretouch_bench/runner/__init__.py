"""The harness: generate (outputs on disk) -> score (per-sample records) -> aggregate (summary, table)."""
