"""Making pairs: the photo-finishing pipeline (ops, parameters, presets, sampling), the
instruction writer and checker, the measured-change describer, the photos the installed
packages ship, and the embedded-dataset builder. The only layer that writes dataset pixels.
"""
