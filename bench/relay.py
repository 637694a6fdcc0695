"""The pass-through chain: stages of the same shape as dedup and classifier whose handlers do
nothing but decode, re-encode and forward (the runner, its Kafka clients and settings are the
real ones). ``python -m bench.relay --stage NAME --input TOPIC --output TOPIC --port PORT`` runs
one such stage with the ``DMZWATCH_`` settings, until SIGTERM.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from dmzwatch.shared.messages import Article
from dmzwatch.shared.runner import ConsumerDefinition, Context, Handler, Output
from dmzwatch.shared.service import ServiceProcess, run_consumer
from dmzwatch.shared.settings import CommonSettings


class Relay(Handler[Article]):
    """Forwards every article, decoded and encoded again by the runner, to ``output``."""

    def __init__(self, output: str) -> None:
        self._output = output

    def handle(self, message: Article, context: Context) -> Sequence[Output]:
        return (Output(self._output, context.key, message),)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = CommonSettings()
    process = ServiceProcess.start(args.stage, settings, args.port)
    definition = ConsumerDefinition(
        stage=args.stage, topics=(args.input,), message_type=Article, handler=Relay(args.output)
    )
    run_consumer(process, definition)


if __name__ == "__main__":
    main()
