"""Shared machinery of the "learning" checks: short instrumented runs of the user's recipe,
curve classification, training-log readers and plots. Torch is imported inside functions only."""
