"""``docker-compose.yml`` is a valid Compose file (the Compose Specification's JSON
schema, vendored: ``compose-spec.md`` says from where) and a coherent deployment: what
services name exists, every process of the application shares one environment, the files
it mounts are in the repository, and Prometheus scrapes the ports the processes serve."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

from tests.processes import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
APP = ("migrate", "web", "worker")  # the services that run our code


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())  # resolves anchors and <<
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


@pytest.fixture(scope="module")
def prometheus() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "ops" / "prometheus.yml").read_text())
    return data


def schema_errors(document: Any) -> list[str]:
    validator = jsonschema_rs.validator_for(json.loads(SCHEMA.read_text()))
    return [f"{list(e.instance_path)}: {e.message}" for e in validator.iter_errors(document)]


def test_the_file_validates_against_the_compose_specification(compose):
    assert schema_errors(compose) == []


def test_the_schema_is_the_compose_specification_and_rejects_what_compose_would():
    """The validator is not vacuous: typos and wrong shapes that Docker Compose refuses
    are refused here too."""
    schema = json.loads(SCHEMA.read_text())
    assert schema["$id"] == "compose_spec.json" and schema["title"] == "Compose Specification"
    good = {
        "services": {"a": {"image": "x", "depends_on": {"b": {"condition": "service_healthy"}}}}
    }
    assert schema_errors(good) == []
    assert schema_errors({"services": {"a": {"image": "x", "restart_policy": "always"}}})
    assert schema_errors({"services": {"a": {"image": "x", "environment": 42}}})
    assert schema_errors(
        {"services": {"a": {"image": "x", "depends_on": {"b": {"condition": "when_ready"}}}}}
    )
    assert schema_errors({"servics": {}})


def test_every_dependency_names_a_service(services):
    for name, service in services.items():
        deps = service.get("depends_on", {})
        names = list(deps) if isinstance(deps, dict) else deps
        assert set(names) <= set(services), f"{name} depends on {set(names) - set(services)}"


def test_the_infrastructure_and_the_application_are_all_there(services):
    expected = {"postgres", "redis", "kafka", "clickhouse", "prometheus", "grafana", *APP}
    assert expected <= set(services)
    kafka = services["kafka"]["environment"]
    assert "controller" in kafka["KAFKA_PROCESS_ROLES"]  # KRaft: no ZooKeeper service
    assert "zookeeper" not in services


def test_web_and_worker_share_the_applications_environment(services):
    """A web and a worker that disagree on a store, the Redis prefix or the JWT secret
    would split the system silently; only the per-process knobs may differ."""
    per_process = {"web": {"CC_WEB_PROCESSES"}, "worker": {"CC_WORKER_METRICS_PORT"}}
    common = services["migrate"]["environment"]
    for name in ("web", "worker"):
        env = dict(services[name]["environment"])
        own = {k: env.pop(k) for k in per_process[name]}
        assert env == common, name
        assert all(own.values()), own
    for key in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL"):
        assert common[key], key  # the sinks are on in the full stack


def test_long_running_services_restart_and_report_health(services):
    for name, service in services.items():
        if name == "migrate":
            assert service.get("restart") == "no"  # one-shot: success ends it
            continue
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    migrate = services["migrate"]["depends_on"]
    for store in ("postgres", "redis", "kafka", "clickhouse"):
        assert migrate[store]["condition"] == "service_healthy"
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )


def test_mounted_files_are_in_the_repository(services):
    """Every bind mount of ./… names a file or directory of this repository."""
    mounts = [
        volume.split(":")
        for service in services.values()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.startswith("./")
    ]
    assert mounts
    for source, *_ in mounts:
        assert (ROOT / source).exists(), source


def container_path(services: dict[str, Any], service: str, repo_path: str) -> str:
    """Where ``repo_path`` (relative to the repository) appears inside ``service``."""
    for volume in services[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./") and (repo_path + "/").startswith(source[2:].rstrip("/") + "/"):
            return target + repo_path[len(source[2:].rstrip("/")) :]
    raise AssertionError(f"{repo_path} is not mounted into {service}")


def test_prometheus_loads_its_config_and_the_alert_rules(services, prometheus):
    config = container_path(services, "prometheus", "ops/prometheus.yml")
    assert f"--config.file={config}" in services["prometheus"]["command"]
    base = Path(config).parent
    for pattern in prometheus["rule_files"]:
        inside = base / pattern  # rule_files are relative to the config file
        for rules in (ROOT / "ops").glob(pattern):
            mounted = container_path(services, "prometheus", str(rules.relative_to(ROOT)))
            assert Path(mounted).match(str(inside)), (mounted, inside)
        assert list((ROOT / "ops").glob(pattern)), f"no rule file matches {pattern}"


def test_prometheus_scrapes_the_web_server_and_every_worker(services, prometheus):
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    web_port = int(services["web"]["environment"].get("PORT", 8000))
    worker_port = int(services["worker"]["environment"]["CC_WORKER_METRICS_PORT"])
    assert jobs["web"]["static_configs"][0]["targets"] == [f"web:{web_port}"]
    assert jobs["worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": worker_port}
    ]
    assert jobs["web"].get("metrics_path", "/metrics") == "/metrics"  # ccweb serves it there
    published = [p.split(":")[-1] for p in services["web"]["ports"]]
    assert str(web_port) in published


def test_grafana_is_provisioned_from_the_repository(services):
    target = container_path(services, "grafana", "ops/grafana/provisioning")
    assert target == "/etc/grafana/provisioning"  # where Grafana looks
    provider = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/dashboards/casino-club.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    assert container_path(services, "grafana", "ops/grafana/dashboards") == path
    datasource = yaml.safe_load(
        (ROOT / "ops/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    port = re.search(r"--web.listen-address=:(\d+)", " ".join(services["prometheus"]["command"]))
    assert datasource["url"] == f"http://prometheus:{port.group(1) if port else 9090}"
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"
