"""Reporting: run folders -> tables and plots people read (run table, latency table and plot)."""
