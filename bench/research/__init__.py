"""Accuracy studies behind the presets' choices (speaker-disjoint k-fold, streaming operating
points, decoder variants, the cascade), each run from the repository root as
``python -m bench.research.<name>``. They train classifiers or need trained exports and take
minutes to hours; the README's Benchmarks section gives their figures.
"""
