"""The DVC stages: thin entry points (python -m pipeline.stages.<stage>) over the library."""
