"""qmux's benchmarks: what the multiplexer costs over doing it by hand, and how far it scales.

Run them all with ``make bench`` (``python -m bench``); see bench/__main__.py for the options and
bench/RESULTS.md for the figures of the last full run.
"""
