"""The ``dmzwatch`` command line: one entry point for services and tools (see DESIGN.md)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from dmzwatch import __version__
from dmzwatch.shared.settings import CommonSettings

if TYPE_CHECKING:
    from dmzwatch.classifier.engine import Classifier

SERVICES = ("poller", "dedup", "classifier", "notifier")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmzwatch",
        description="News-event monitor: purges, summits and defections, within minutes.",
    )
    parser.add_argument("--version", action="version", version=f"dmzwatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SERVICES:
        sub.add_parser(name, help=f"run the {name} service")
    sub.add_parser("stack", help="run broker, services and demo feeds locally; Ctrl-C stops all")
    demo = sub.add_parser("demo", help="one pass over the demo feeds through the whole pipeline")
    demo.add_argument("--timeout", type=float, default=90.0, help="seconds to wait (default 90)")
    tail = sub.add_parser("tail", help="print alerts as they arrive")
    tail.add_argument("--category", help="only this category (default: all)")
    tail.add_argument("--from-beginning", action="store_true", help="replay earlier alerts too")
    tail.add_argument("--json", action="store_true", help="print each alert as JSON")
    tail.add_argument("--max-alerts", type=int, help="exit after this many alerts")
    tail.add_argument("--idle-timeout", type=float, help="exit after this many quiet seconds")
    classify = sub.add_parser("classify", help="JSONL articles in, JSONL decisions out (offline)")
    classify.add_argument("file", nargs="?", help="input JSONL (default: standard input)")
    evaluate = sub.add_parser("eval", help="precision/recall/F1 on labelled JSONL")
    evaluate.add_argument("file", help="labelled JSONL (a 'labels' field per line)")
    cluster = sub.add_parser("cluster", help="JSONL articles in, JSONL story ids out (offline)")
    cluster.add_argument("file", help="JSONL with id, url, title, text, source per line")
    feed = sub.add_parser("feed", help="feed tools")
    feed_sub = feed.add_subparsers(dest="feed_command", required=True, metavar="COMMAND")
    check = feed_sub.add_parser("check", help="fetch (or read) and parse one feed; prints JSON")
    check.add_argument("target", help="an http(s) URL or a file path")
    check.add_argument(
        "--allow-network",
        action="append",
        default=[],
        metavar="CIDR[:PORT]",
        help="let the fetch reach this private/loopback network, as DMZWATCH_FETCH_ALLOW_NETWORKS"
        " (repeatable, or comma-separated), e.g. 127.0.0.1/32",
    )
    check.add_argument("--base-url", help="URL a file's relative links resolve against")
    notify = sub.add_parser("notify", help="notification tools")
    notify_sub = notify.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    notify_test = notify_sub.add_parser("test", help="send a test message to one subscription")
    notify_test.add_argument("destination", help="a subscription name from the subscriptions file")
    topics = sub.add_parser("topics", help="topic administration")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True, metavar="COMMAND")
    create = topics_sub.add_parser("create", help="create the topics of deploy/kafka/topics.yaml")
    create.add_argument("--file", type=Path, default=Path("deploy/kafka/topics.yaml"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: str = args.command
    if command in SERVICES:
        return _run_service(command)
    handlers = {
        "stack": _stack,
        "demo": _demo,
        "tail": _tail,
        "classify": _classify,
        "eval": _eval,
        "cluster": _cluster,
        "feed": _feed_check,
        "notify": _notify_test,
        "topics": _topics_create,
    }
    return handlers[command](args)


def _run_service(name: str) -> int:
    import importlib

    importlib.import_module(f"dmzwatch.{name}.app").main()
    return 0


def _common_settings() -> CommonSettings:
    return CommonSettings()


def _classifier() -> Classifier:
    """The classifier of ``DMZWATCH_TAXONOMY_FILE`` (default: the bundled taxonomy)."""
    from dmzwatch.classifier.engine import Classifier
    from dmzwatch.classifier.settings import ClassifierSettings

    return Classifier.from_taxonomy(ClassifierSettings().taxonomy_file)


def _stack(args: argparse.Namespace) -> int:
    from dmzwatch.shared.logs import configure_logging
    from dmzwatch.stack import SERVICES as STACK_SERVICES
    from dmzwatch.stack import LocalStack, StackConfig, StackSettings

    settings = StackSettings()
    configure_logging(settings.log_level, "console")
    stack = LocalStack(StackConfig.from_settings(settings))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        stack.start()
        stack.wait_ready()
        env = (
            ""
            if stack.bootstrap_servers == "127.0.0.1:9092"
            else f"DMZWATCH_KAFKA_BOOTSTRAP_SERVERS={stack.bootstrap_servers} "
        )
        ports = ", ".join(f"{n} {stack.config.ports[n]}" for n in STACK_SERVICES)
        print(
            f"\ndmzwatch is running: broker {stack.bootstrap_servers}, metrics on ports {ports}"
            f"\nWatch alerts in another terminal with:  {env}.venv/bin/dmzwatch tail"
            " --from-beginning\nCtrl-C stops everything.\n",
            flush=True,
        )
        restarts: dict[str, int] = {}
        while True:
            time.sleep(1)
            for name, process in list(stack.processes.items()):
                if process.poll() is not None:
                    # The supervisor's job: a crashed stage restarts, with a growing pause.
                    restarts[name] = restarts.get(name, 0) + 1
                    print(f"{name} exited with {process.returncode}; restarting", flush=True)
                    time.sleep(min(30, 2 ** restarts[name]))
                    stack.start_service(name)
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from dmzwatch.demo import print_result, run_demo
    from dmzwatch.shared.logs import configure_logging

    configure_logging("WARNING", "console")
    result = run_demo(_common_settings(), timeout=args.timeout)
    print_result(result, sys.stdout)
    return 0 if result.complete else 1


def _tail(args: argparse.Namespace) -> int:
    from dmzwatch.tail import tail

    tail(
        _common_settings(),
        args.category,
        from_beginning=args.from_beginning,
        as_json=args.json,
        max_alerts=args.max_alerts,
        idle_timeout_ms=int(args.idle_timeout * 1000) if args.idle_timeout else None,
    )
    return 0


def _classify(args: argparse.Namespace) -> int:
    from dmzwatch.classifier.evaluation import classify_stream

    classifier = _classifier()
    if args.file:
        with open(args.file, encoding="utf-8") as lines:
            errors = classify_stream(classifier, lines, sys.stdout)
    else:
        errors = classify_stream(classifier, sys.stdin, sys.stdout)
    if errors:
        print(f"{errors} line(s) could not be classified (see their 'error')", file=sys.stderr)
    return 1 if errors else 0


def _eval(args: argparse.Namespace) -> int:
    from dmzwatch.classifier.evaluation import evaluate, format_report

    with open(args.file, encoding="utf-8") as lines:
        report = evaluate(_classifier(), lines)
    print(format_report(report))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from dmzwatch.dedup.cluster import cluster_stream

    with open(args.file, encoding="utf-8") as lines:
        errors = cluster_stream(lines, sys.stdout)
    if errors:
        print(f"{errors} line(s) could not be read (see their 'error')", file=sys.stderr)
    return 1 if errors else 0


def _feed_check(args: argparse.Namespace) -> int:
    from dmzwatch.poller.check import check_feed
    from dmzwatch.poller.fetch import HttpFeedFetcher
    from dmzwatch.poller.ssrf import AddressPolicy

    entries = [part for value in args.allow_network for part in value.split(",")]
    try:
        policy = AddressPolicy.from_entries(entries)
    except ValueError as exc:
        print(f"dmzwatch feed check: --allow-network: {exc}", file=sys.stderr)
        return 2
    fetcher = HttpFeedFetcher(address_policy=policy)
    try:
        report = check_feed(args.target, fetcher, base_url=args.base_url)
        print(json.dumps(report, ensure_ascii=False, indent=2))
    finally:
        fetcher.close()
    return 0


def _notify_test(args: argparse.Namespace) -> int:
    """Exit 0 when the destination accepted the message, 1 when it did not, 2 on bad config."""
    import os

    from dmzwatch.notifier.sample import send_test
    from dmzwatch.notifier.settings import NotifierSettings
    from dmzwatch.shared.clock import SystemClock
    from dmzwatch.shared.errors import ConfigurationError

    try:
        result = send_test(NotifierSettings(), args.destination, dict(os.environ), SystemClock())
    except ConfigurationError as exc:
        print(json.dumps({"destination": args.destination, "delivered": False, "error": str(exc)}))
        return 2
    print(json.dumps(result))
    return 0 if result["delivered"] else 1


def _topics_create(args: argparse.Namespace) -> int:
    from dmzwatch.shared.kafka import create_topics, load_topic_specs

    settings = _common_settings()
    catalogue = settings.topics(_classifier().categories)
    created = create_topics(settings, load_topic_specs(args.file, catalogue))
    print(json.dumps({"created": created}))
    return 0
