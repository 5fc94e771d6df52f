"""Training: the loop, its checkpoints, schedule and log sinks, and the train section."""
