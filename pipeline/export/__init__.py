"""Export: convert the trained model, verify every format, report sizes and accuracy."""
