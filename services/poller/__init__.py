"""The poller stage: fetches feeds politely and publishes their entries as articles."""
