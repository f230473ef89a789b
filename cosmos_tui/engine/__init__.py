"""Run engine: parameters, inputs, profiles, logs, progress, failures, lifecycle, queue."""
