"""Training schedulers: which queued jobs start, in which order."""
