"""Infrastructure and contracts shared by every dmzwatch service.

Settings base, topic catalogue, versioned message models, error vocabulary, the one Kafka runner,
metrics, health endpoints, clock and logging. No classification or notification logic lives here.
"""
