"""Running sweeps on more machines than one. Ray is an optional extra (`sdstudio[cluster]`):
nothing here is imported unless a sweep is sent to a cluster."""
