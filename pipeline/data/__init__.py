"""Data: sources, clip checks, the split, augmentation and the features on disk."""
