"""Data: acquisition (acquire/), the clip stores, the split, synthetic streams, augmentation and
the features on disk."""
