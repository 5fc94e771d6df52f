"""Scoring a trained model: metrics, confusion matrices and their pictures."""
