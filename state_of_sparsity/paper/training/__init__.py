"""The harness the benchmark binaries share: schedules, losses, checkpoints, strategy, the run."""
