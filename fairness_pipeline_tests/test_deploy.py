"""The deployment files in deploy/: they parse, their commands are real command lines of the installed entry points,
and every environment variable they set is one the code reads. No cluster or container runs here; where the Compose
plugin is installed, ``docker compose config`` validates the Compose file."""

from __future__ import annotations

import re
import shutil
import subprocess

import click
import pytest
import yaml

from fairness_pipeline import settings

DEPLOY = settings.PROJECT_DIR / "deploy"
COMPOSE = DEPLOY / "docker-compose.yaml"
VALUES = DEPLOY / "helm" / "values.yaml"
DAGSTER_VARIABLES = {"DAGSTER_HOME"}
IMAGE_WORKSPACE = "/opt/dagster/workspace.yaml"


def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def variables_read_by_the_code() -> set[str]:
    """Every FAIRNESS_* name written in the package's source or in dagster.yaml."""
    sources = [*settings.PACKAGE_DIR.rglob("*.py"), settings.PROJECT_DIR / "dagster.yaml"]
    return {name for path in sources for name in re.findall(r"\bFAIRNESS_[A-Z0-9_]+\b", path.read_text())}


def parse(group: click.Command, argv: list[str]) -> click.Context:
    """Resolve ``argv`` through click groups to the command it names and parse its options (nothing runs);
    raises click.UsageError on an unknown command or option."""
    command, args = group, list(argv)
    while isinstance(command, click.Group):
        name = args.pop(0)
        command = command.get_command(click.Context(command), name)
        if command is None:
            raise click.UsageError(f"no command {name!r}")
    return command.make_context(command.name or "", args)


def entry_point(argv: list[str]) -> click.Context:
    """Parse a command line of one of the image's entry points (dagster, dagster-webserver, dagster-daemon)."""
    program, *args = argv
    if program == "dagster":
        from dagster._cli import cli
    elif program == "dagster-webserver":
        from dagster_webserver.cli import cli
    elif program == "dagster-daemon":
        from dagster._daemon.cli import cli
    else:
        raise AssertionError(f"unknown program {program}")
    return parse(cli, args)


def test_compose_runs_postgres_code_location_webserver_and_daemon():
    services = compose()["services"]
    assert set(services) == {"postgres", "code_location", "webserver", "daemon"}
    code = entry_point(services["code_location"]["command"])
    assert code.params["module_name"] == "fairness_pipeline.definitions"
    grpc = yaml.safe_load((DEPLOY / "workspace.yaml").read_text())["load_from"][0]["grpc_server"]
    assert (grpc["host"], grpc["port"]) == ("code_location", code.params["port"])
    assert f"COPY deploy/workspace.yaml {IMAGE_WORKSPACE}" in (DEPLOY / "Dockerfile").read_text()
    for name in ("webserver", "daemon"):
        # The image's workspace file is deploy/workspace.yaml (click checks that the path exists).
        argv = [str(DEPLOY / "workspace.yaml") if arg == IMAGE_WORKSPACE else arg for arg in services[name]["command"]]
        assert argv != services[name]["command"]
        parsed = entry_point(argv)
        assert list(parsed.params["workspace"]) == [str(DEPLOY / "workspace.yaml")]
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_sets_only_variables_the_code_reads():
    read = variables_read_by_the_code()
    services = compose()["services"]
    for name in ("code_location", "webserver", "daemon"):
        environment = set(services[name]["environment"])
        assert {"FAIRNESS_DATABASE_URL", "FAIRNESS_DAGSTER_STORAGE_URL"} <= environment
        assert environment - DAGSTER_VARIABLES <= read, environment - DAGSTER_VARIABLES - read


def test_compose_database_urls_are_what_the_code_accepts():
    from fairness_pipeline.store import urls

    environment = compose()["services"]["code_location"]["environment"]
    project = environment["FAIRNESS_DATABASE_URL"].replace("${FAIRNESS_DB_PASSWORD:?set FAIRNESS_DB_PASSWORD}", "pw")
    storage = environment["FAIRNESS_DAGSTER_STORAGE_URL"].replace(
        "${FAIRNESS_DB_PASSWORD:?set FAIRNESS_DB_PASSWORD}", "pw"
    )
    assert urls.libpq_url(project) == "postgresql://fairness:pw@postgres:5432/fairness"
    assert storage == urls.sqlalchemy_url(urls.libpq_url(project))


def test_helm_values_deploy_our_code_location_on_external_postgres():
    chart = values()
    deployment = chart["dagster-user-deployments"]["deployments"][0]
    code = entry_point(["dagster", "code-server", "start", *deployment["codeServerArgs"], "-p", "3030"])
    assert code.params["module_name"] == "fairness_pipeline.definitions"
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    assert {item["name"] for item in deployment["env"]} <= variables_read_by_the_code()
    assert chart["postgresql"]["enabled"] is False and chart["postgresql"]["postgresqlHost"]
    assert chart["runLauncher"]["type"] == "K8sRunLauncher"


def test_helm_run_queue_matches_dagster_yaml():
    queue = values()["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    instance = yaml.safe_load((settings.PROJECT_DIR / "dagster.yaml").read_text())["concurrency"]["runs"]
    assert queue["maxConcurrentRuns"] == instance["max_concurrent_runs"]
    assert [
        {"key": t["key"], "value": t["value"], "limit": t["limit"]} for t in queue["tagConcurrencyLimits"]
    ] == instance["tag_concurrency_limits"]


def test_an_unknown_option_would_be_caught():
    with pytest.raises(click.UsageError):
        entry_point(["dagster", "code-server", "start", "--module", "x", "--no-such-option"])
    with pytest.raises(click.UsageError):
        entry_point(["dagster", "code-servers", "start"])


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    return subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _compose_plugin(), reason="docker compose is not installed")
def test_docker_compose_config_accepts_the_file():
    done = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"],
        env={"FAIRNESS_DB_PASSWORD": "pw", "PATH": "/usr/bin:/bin:/usr/local/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
