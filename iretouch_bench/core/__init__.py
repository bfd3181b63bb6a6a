"""The leaf layer: errors and the one-line formatter, image I/O, the resizer, atomic writes
and the user cache, hashing, timing and provenance. Imports nothing else of the suite."""
