"""The error vocabulary: an exception's type tells the runner what to do next.

- :class:`RetryableError` — a dependency is unavailable (Redis, the broker, a receiver). The runner
  rewinds to the failed message, does not commit, marks the stage not ready and backs off.
- :class:`InvalidMessage` — this message can never be handled (bad JSON, wrong schema, unknown
  ``schema_version``). The runner dead-letters it, commits and counts it.
- Anything else raised by a handler is a bug met by one message: the runner logs it with its
  traceback, dead-letters the message (so one poison message cannot wedge a partition) and goes
  on. A failure of the runner itself (broker unreachable for good, a commit that cannot be made)
  crashes the process loudly and the supervisor restarts it.
"""

from __future__ import annotations


class DmzwatchError(Exception):
    """Base of every error dmzwatch raises on purpose."""


class RetryableError(DmzwatchError):
    """A transient failure of a dependency: retry the same message later."""


class InvalidMessage(DmzwatchError):
    """A message that can never be processed: dead-letter it and go on."""


class ConfigurationError(DmzwatchError):
    """Settings or configuration files are wrong: refuse to start, saying what to fix."""
