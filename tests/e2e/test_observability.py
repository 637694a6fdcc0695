"""What ops run is checked for real: a real Prometheus (Debian's ``prometheus`` package) scrapes the
real pipeline with the project's configuration pointed at loopback and loads the project's rules;
every dashboard panel's PromQL must evaluate and return data after the demo ran; every alert rule
passes ``promtool check rules`` and has a ``promtool test rules`` case that fires it.

The feeds are served from an empty folder first (the poller fails and backs off), and the demo
files appear only once Prometheus scrapes every service, so the whole run is on record.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from bench.stack import wait_until
from dmzwatch.demo import WebhookReceiver
from dmzwatch.feedserver import DEMO_FEEDS, FeedServer
from dmzwatch.shared.broker import free_port
from dmzwatch.stack import SERVICES, LocalStack, StackConfig
from tests.conftest import REDIS_URL, REPO

pytestmark = pytest.mark.e2e

PROMETHEUS_DIR = REPO / "deploy/prometheus"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS_DIR / "tests").glob("*.test.yml"))
DASHBOARDS = sorted((REPO / "deploy/grafana/dashboards").glob("*.json"))
INSTALLER = REPO / "deploy/install-ops-tools.sh"
POLL_SECONDS = 2
# Grafana's variables, made concrete. The windows reach back over the whole short run, so rate()
# and histogram_quantile() see the demo's burst however slow this machine is today.
SUBSTITUTIONS = {"$__rate_interval": "10m", "$__range": "1h", "$__interval": "15s"}


def ensure_ops_tools(*commands: str) -> None:
    """Install Debian's prometheus (prometheus, promtool) and prometheus-alertmanager (amtool)
    when missing: the same script as ``make ops-tools``, idempotent and quick when installed."""
    if all(shutil.which(c) for c in commands):
        return
    done = subprocess.run(
        ["sh", str(INSTALLER)], capture_output=True, text=True, timeout=900, check=False
    )
    if done.returncode != 0 or not all(shutil.which(c) for c in commands):
        pytest.fail(
            f"could not install {commands} from Debian's packages ({INSTALLER.name}, exit "
            f"{done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def ensure_prometheus_tools() -> None:
    ensure_ops_tools("prometheus", "promtool")


# ---------------------------------------------------------------------------------- the rules


def alert_names() -> set[str]:
    names = set()
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["alert"] for rule in group["rules"] if "alert" in rule}
    return names


def test_promtool_check_rules_passes_on_every_rule_file() -> None:
    ensure_prometheus_tools()
    assert RULE_FILES, "no rule files"
    for path in RULE_FILES:
        done = subprocess.run(
            ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{path.name}:\n{done.stdout}{done.stderr}"


def test_promtool_test_rules_passes_and_fires_every_alert_rule() -> None:
    ensure_prometheus_tools()
    fired: set[str] = set()
    quiet: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
        done = subprocess.run(
            ["promtool", "test", "rules", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"{path.name}:\n{done.stdout}{done.stderr}"
    names = alert_names()
    assert len(names) >= 7
    assert names - fired == set(), "alert rules without a promtool case that fires them"
    assert names - quiet == set(), "alert rules without a promtool case where they stay quiet"


def test_amtool_accepts_the_alertmanager_configuration() -> None:
    ensure_ops_tools("amtool")
    done = subprocess.run(
        ["amtool", "check-config", str(REPO / "deploy/alertmanager/alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------ the running system


@dataclass
class Panel:
    dashboard: str
    title: str
    ref: str
    expr: str

    def query(self) -> str:
        expr = self.expr
        for variable, value in SUBSTITUTIONS.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unsubstituted variable in {self}"
        return expr


def dashboard_panels() -> list[Panel]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        stack = list(board["panels"])
        while stack:
            panel = stack.pop(0)
            stack.extend(panel.get("panels", []))
            for target in panel.get("targets", []):
                found.append(Panel(path.stem, panel["title"], target["refId"], target["expr"]))
    return found


class Prometheus:
    """A real Prometheus on a free loopback port, with its own data folder."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.port = free_port()
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    "prometheus",
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def api(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:  # 400/422: a bad query; the body says why
            return json.loads(exc.read())

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("/api/v1/query", query=expr)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, "prometheus exited:\n" + self.log.read_text()
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{self.port}/-/ready", timeout=2
                ) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                pass
            assert time.monotonic() < deadline, "prometheus not ready:\n" + self.log.read_text()
            time.sleep(0.3)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def loopback_config(ports: dict[str, int], workdir: Path) -> Path:
    """The project's prometheus.yml and rule files, with every target on 127.0.0.1, a 1 s scrape
    and evaluation interval, and no Alertmanager (none runs here)."""
    config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    config["global"].update(
        {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"}
    )
    config.pop("alerting", None)
    rewritten = set()
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            targets = []
            for target in static["targets"]:
                host = target.split(":")[0]
                targets.append(f"127.0.0.1:{ports[host]}")
                rewritten.add(host)
            static["targets"] = targets
    assert rewritten == set(SERVICES), f"prometheus.yml scrapes {rewritten}, not every service"
    shutil.copytree(PROMETHEUS_DIR / "rules", workdir / "rules")
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Observed:
    prometheus: Prometheus
    stack: LocalStack
    receiver: WebhookReceiver


def has_data(result: dict[str, Any]) -> bool:
    """At least one sample with a number (histogram_quantile over no observations gives NaN)."""
    data = result.get("data", {})
    if data.get("resultType") == "scalar":
        return not math.isnan(float(data["result"][1]))
    return any(not math.isnan(float(s["value"][1])) for s in data.get("result", []))


@pytest.fixture(scope="module")
def observed(
    tmp_path_factory: pytest.TempPathFactory, bootstrap_servers: str
) -> Iterator[Observed]:
    ensure_prometheus_tools()
    tmp = tmp_path_factory.mktemp("observability")
    run = uuid.uuid4().hex[:8]
    published = tmp / "published"
    published.mkdir()
    server = FeedServer(published, conditional=False).start()
    feeds = yaml.safe_load(
        server.render_feed_list(tmp / "feeds.yaml", source=DEMO_FEEDS / "feeds.yaml").read_text()
    )
    for feed in feeds["feeds"]:
        feed["interval_seconds"] = POLL_SECONDS
    (tmp / "feeds.yaml").write_text(yaml.safe_dump(feeds))
    receiver = WebhookReceiver()
    (tmp / "subs.yaml").write_text(
        f"subscriptions:\n  - name: ops-hook\n    webhook:\n      url: {receiver.url}\n"
    )
    ports = {s: free_port() for s in SERVICES}
    prometheus = Prometheus(loopback_config(ports, tmp), tmp)
    config = StackConfig(
        bootstrap_servers=bootstrap_servers,
        redis_url=REDIS_URL,
        topic_prefix=f"ops-{run}",
        redis_key_prefix=f"dmzwatch-test:ops-{run}:",
        feeds_file=tmp / "feeds.yaml",
        subscriptions_file=tmp / "subs.yaml",
        ports=ports,
        log_dir=tmp,
        log_format="json",
        session_timeout_ms=6000,
        extra_env={
            "DMZWATCH_FETCH_ALLOW_NETWORKS": server.base_url.removeprefix("http://"),
            "DMZWATCH_MIN_INTERVAL_SECONDS": str(POLL_SECONDS),
            "DMZWATCH_MAX_INTERVAL_SECONDS": str(POLL_SECONDS),
            "DMZWATCH_MAX_BACKOFF_SECONDS": str(POLL_SECONDS),
        },
    )
    stack = LocalStack(config)
    try:
        prometheus.wait_ready()
        stack.start()
        stack.wait_ready(90)
        # Every service scraped before any article flows: the demo's burst is on record.
        wait_until(
            lambda: (
                sum(
                    float(s["value"][1])
                    for s in prometheus.query('up{job="dmzwatch"}')["data"]["result"]
                )
                == len(SERVICES)
            ),
            60,
            "prometheus to scrape every service",
        )
        wait_until(
            lambda: has_data(
                prometheus.query('dmzwatch_poller_fetches_total{outcome="error"} > 0')
            ),
            60,
            "the poller to fail on the empty feed folder",
        )
        for path in DEMO_FEEDS.iterdir():  # the demo feeds appear
            if path.suffix in {".xml", ".atom"}:
                shutil.copy(path, published / path.name)
        wait_until(lambda: len(receiver.received) > 0, 120, "webhook deliveries")
        yield Observed(prometheus, stack, receiver)
    finally:
        stack.stop()
        prometheus.stop()
        server.stop()
        receiver.stop()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=config.redis_key_prefix + "*"))
        if keys:
            client.delete(*keys)
        for name in (*SERVICES, "prometheus"):
            log = tmp / f"{name}.log"
            if log.exists():
                tail = "\n".join(log.read_text().splitlines()[-10:])
                print(f"--- {name} log (tail) ---\n{tail}")


def test_every_target_is_up(observed: Observed) -> None:
    targets = observed.prometheus.api("/api/v1/targets")["data"]["activeTargets"]
    assert {t["labels"]["service"] for t in targets} == set(SERVICES)
    assert {t["labels"]["service"]: t["health"] for t in targets} == dict.fromkeys(
        SERVICES, "up"
    ), [t.get("lastError") for t in targets]
    up = observed.prometheus.query('up{job="dmzwatch"}')["data"]["result"]
    assert sorted(float(s["value"][1]) for s in up) == [1.0] * len(SERVICES)


def test_every_dashboard_panel_query_evaluates_and_returns_data(observed: Observed) -> None:
    panels = dashboard_panels()
    assert {p.dashboard for p in panels} == {"pipeline", "feeds", "notifications"}
    assert len(panels) >= 30
    for panel in panels:
        result = observed.prometheus.query(panel.query())
        assert result["status"] == "success", f"{panel}: {result.get('error')}"
    # Scrapes and rule evaluations trail the demo by a second or two: wait until all have data.
    empty: list[Panel] = []

    def all_have_data() -> bool:
        empty[:] = [p for p in panels if not has_data(observed.prometheus.query(p.query()))]
        return not empty

    try:
        wait_until(all_have_data, 90, "every panel to return data")
    except AssertionError:
        pytest.fail("panels without data:\n" + "\n".join(map(str, empty)))


def test_every_rule_evaluates_without_error_against_the_real_metrics(observed: Observed) -> None:
    groups = observed.prometheus.api("/api/v1/rules")["data"]["groups"]
    loaded = {
        rule["name"] for group in groups for rule in group["rules"] if rule["type"] == "alerting"
    }
    assert loaded == alert_names()
    wait_until(
        lambda: all(
            r.get("lastEvaluation", "").startswith("0001") is False
            for g in observed.prometheus.api("/api/v1/rules")["data"]["groups"]
            for r in g["rules"]
        ),
        30,
        "every rule evaluated once",
    )
    groups = observed.prometheus.api("/api/v1/rules")["data"]["groups"]
    broken = {
        r["name"]: r.get("lastError") for g in groups for r in g["rules"] if r["health"] != "ok"
    }
    assert broken == {}
    # Nothing is wrong with the demo run: no page fires.
    firing = observed.prometheus.query('ALERTS{alertstate="firing", severity="page"}')
    assert firing["data"]["result"] == [], firing
