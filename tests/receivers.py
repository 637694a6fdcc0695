"""The notifier's tests' HTTP receivers: the chaos run's (one implementation, see there)."""

from chaos.receivers import Receiver, Reply, Request

__all__ = ["Receiver", "Reply", "Request"]
