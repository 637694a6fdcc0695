"""The dedup stage: drops repeats of an article and gives each unique article its story."""
