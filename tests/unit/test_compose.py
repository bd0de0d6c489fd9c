"""Static checks of the Docker deliverables: docker-compose.yml, Dockerfile, .dockerignore.

No Docker engine is needed: the files are parsed (YAML with ``yaml.safe_load``, the
Dockerfile with a small instruction parser) and cross-checked against each other, against
pyproject.toml and against the SPEC's configuration contract.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PYPROJECT = ROOT / "pyproject.toml"

# SPEC "Configuration contract": every variable the worker reads.
CONFIG_CONTRACT = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "EVENTS_TOPIC",
    "ELASTICSEARCH_URL",
    "ES_INDEX",
    "REFERENCE_DATA",
    "WINDOW_SECONDS",
    "ALLOWED_LATENESS_SECONDS",
    "IDLE_TIMEOUT_SECONDS",
    "APP_ID",
    "DATA_DIR",
    "WEB_PORT",
)

REQUIRED_SERVICES = ("kafka", "elasticsearch", "kibana", "worker")


# --------------------------------------------------------------------------- helpers


def _load_compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    assert isinstance(data, dict), "docker-compose.yml must be a YAML mapping"
    return data


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    svcs = compose.get("services")
    assert isinstance(svcs, dict) and svcs, "docker-compose.yml has no services"
    return svcs


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    with PYPROJECT.open("rb") as f:
        return tomllib.load(f)


def _service(services: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    assert name in services, f"service {name!r} missing from docker-compose.yml"
    svc = services[name]
    assert isinstance(svc, dict), f"service {name!r} is not a mapping"
    return svc


def _env_files(svc: dict[str, Any]) -> dict[str, str]:
    """The service's env files from the repository, merged in order (a later file wins), as Compose
    does. Optional files (``required: false``, e.g. a user's ./clickagg.env) are not read: they are
    not part of the repository, and the tests must not depend on one a developer has locally."""
    entries = svc.get("env_file") or []
    env: dict[str, str] = {}
    for entry in [entries] if isinstance(entries, str) else entries:
        path, required = (
            (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        )
        if not required:
            continue
        file = COMPOSE_FILE.parent / path
        assert file.is_file(), f"env file {path} does not exist"
        for line in file.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                key, sep, value = line.partition("=")
                assert sep, f"{path}: not KEY=VALUE: {line!r}"
                env[key.strip()] = value.strip()
    return env


def _env(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment as the container sees it: its env files, then ``environment``
    (mapping or ``KEY=VALUE`` list form), which Compose gives precedence."""
    raw = svc.get("environment") or {}
    env: dict[str, str] = _env_files(svc)
    if isinstance(raw, dict):
        for key, value in raw.items():
            if value is None:
                continue  # `KEY:` with no value means "take it from the host": not defined here
            env[str(key)] = str(value).lower() if isinstance(value, bool) else str(value)
    elif isinstance(raw, list):
        for item in raw:
            key, sep, value = str(item).partition("=")
            if sep:
                env[key] = value
    else:
        raise AssertionError(f"unsupported environment type: {type(raw).__name__}")
    return env


def _port_mappings(svc: dict[str, Any]) -> list[tuple[int | None, int]]:
    """(published host port or None, container port) for each ``ports`` entry."""
    mappings: list[tuple[int | None, int]] = []
    for entry in svc.get("ports") or []:
        if isinstance(entry, dict):  # long syntax
            published = entry.get("published")
            mappings.append((int(published) if published is not None else None, int(entry["target"])))
            continue
        text = str(entry).split("/", 1)[0]  # drop "/tcp"
        parts = text.rsplit(":", 2)
        if len(parts) == 1:
            mappings.append((None, int(parts[0])))
        else:
            host, container = parts[-2], parts[-1]
            mappings.append((int(host) if host else None, int(container)))
    return mappings


def _published(svc: dict[str, Any]) -> set[int]:
    return {host for host, _ in _port_mappings(svc) if host is not None}


def _names_of(services: dict[str, dict[str, Any]], name: str) -> set[str]:
    """DNS names under which a service is reachable on the default compose network."""
    svc = _service(services, name)
    names = {name}
    if svc.get("hostname"):
        names.add(str(svc["hostname"]))
    if svc.get("container_name"):
        names.add(str(svc["container_name"]))
    return names


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """Parse Kafka ``NAME://host:port,...`` into {NAME: (host, port)}."""
    result: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        match = re.fullmatch(r"([A-Za-z0-9_]+)://(.*):(\d+)", item)
        assert match, f"cannot parse Kafka listener {item!r}"
        result[match.group(1)] = (match.group(2), int(match.group(3)))
    return result


def _image_version(image: str) -> Version:
    tag = image.rpartition(":")[2]
    assert re.fullmatch(r"\d+\.\d+\.\d+", tag), f"image {image!r} must be pinned to an exact x.y.z tag"
    return Version(tag)


def _dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and line continuations joined."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        full = (pending + stripped).strip()
        pending = ""
        if full:
            keyword, _, args = full.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    if pending.strip():
        keyword, _, args = pending.strip().partition(" ")
        instructions.append((keyword.upper(), args.strip()))
    return instructions


def _worker_dockerfile(services: dict[str, dict[str, Any]]) -> Path:
    build = _service(services, "worker").get("build")
    assert build, "worker must be built from the repository (build:)"
    if isinstance(build, str):
        context, dockerfile = build, "Dockerfile"
    else:
        context, dockerfile = str(build.get("context", ".")), str(build.get("dockerfile", "Dockerfile"))
    return (COMPOSE_FILE.parent / context / dockerfile).resolve()


def _final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    froms = [i for i, (kw, _) in enumerate(instructions) if kw == "FROM"]
    assert froms, "Dockerfile has no FROM"
    return instructions[froms[-1] :]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


# --------------------------------------------------------------------------- compose file


def test_compose_parses_and_uses_compose_spec(compose: dict[str, Any]) -> None:
    assert "version" not in compose, "Compose spec files have no top-level `version:` key"
    assert isinstance(compose.get("services"), dict)


@pytest.mark.parametrize("name", REQUIRED_SERVICES)
def test_required_service_present(services: dict[str, dict[str, Any]], name: str) -> None:
    svc = _service(services, name)
    assert svc.get("image") or svc.get("build"), f"service {name!r} has neither image nor build"


def test_no_zookeeper_anywhere(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    assert not [name for name in services if "zookeeper" in name.lower()]
    # Comments are not part of the parsed document, so this looks at real keys and values only.
    assert "zookeeper" not in json.dumps(compose).lower()


def test_kafka_is_kraft(services: dict[str, dict[str, Any]]) -> None:
    kafka = _service(services, "kafka")
    assert str(kafka.get("image", "")).startswith("apache/kafka:")
    env = _env(kafka)
    roles = {r.strip() for r in env.get("KAFKA_PROCESS_ROLES", "").split(",") if r.strip()}
    assert {"broker", "controller"} <= roles, f"KAFKA_PROCESS_ROLES={env.get('KAFKA_PROCESS_ROLES')!r}"

    node_id = env.get("KAFKA_NODE_ID")
    assert node_id, "KAFKA_NODE_ID missing"
    voters = env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", "")
    voter_ids = {v.split("@", 1)[0].strip() for v in voters.split(",") if "@" in v}
    assert node_id in voter_ids, f"node {node_id} is not a controller quorum voter ({voters!r})"

    controller_names = {n.strip() for n in env.get("KAFKA_CONTROLLER_LISTENER_NAMES", "").split(",") if n}
    listeners = _listeners(env.get("KAFKA_LISTENERS", ""))
    assert controller_names and controller_names <= listeners.keys(), (
        "the controller listener must be one of KAFKA_LISTENERS"
    )
    # The quorum voter's port is the controller listener's port.
    voter_port = int(voters.split(",")[0].rsplit(":", 1)[1])
    assert voter_port in {listeners[n][1] for n in controller_names}


def test_kafka_single_node_internal_topics(services: dict[str, dict[str, Any]]) -> None:
    env = _env(_service(services, "kafka"))
    # One broker: internal topics cannot have more than one replica, and transactions
    # (used by the worker) need the transaction state log to be creatable.
    for key in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env.get(key) == "1", f"{key} must be 1 on a single-node cluster, got {env.get(key)!r}"
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"


def test_kafka_listeners_reachable_from_host_and_containers(services: dict[str, dict[str, Any]]) -> None:
    kafka = _service(services, "kafka")
    env = _env(kafka)
    listeners = _listeners(env.get("KAFKA_LISTENERS", ""))
    advertised = _listeners(env.get("KAFKA_ADVERTISED_LISTENERS", ""))
    assert advertised, "KAFKA_ADVERTISED_LISTENERS missing"
    for name, (host, port) in advertised.items():
        assert name in listeners, f"advertised listener {name} is not in KAFKA_LISTENERS"
        assert listeners[name][1] == port, f"listener {name} binds {listeners[name][1]}, advertises {port}"
        if host in {"localhost", "127.0.0.1"}:
            assert port in _published(kafka), f"host listener port {port} is not published"
        else:
            assert host in _names_of(services, "kafka"), f"listener {name} advertises unknown host {host}"
    assert any(h in {"localhost", "127.0.0.1"} for h, _ in advertised.values()), "no listener for the host"
    assert any(h in _names_of(services, "kafka") for h, _ in advertised.values()), (
        "no listener for other containers"
    )


def test_kafka_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    test = _service(services, "kafka").get("healthcheck", {}).get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert "/opt/kafka/bin/kafka-broker-api-versions.sh" in text
    assert "--bootstrap-server localhost:9092" in text


def test_elasticsearch_is_v8_single_node_without_security(services: dict[str, dict[str, Any]]) -> None:
    es = _service(services, "elasticsearch")
    image = str(es.get("image", ""))
    assert image.startswith("docker.elastic.co/elasticsearch/elasticsearch:")
    assert _image_version(image).major == 8
    env = _env(es)
    assert env.get("discovery.type") == "single-node"
    assert env.get("xpack.security.enabled") == "false"
    assert "-Xms1g" in env.get("ES_JAVA_OPTS", "") and "-Xmx1g" in env.get("ES_JAVA_OPTS", "")
    test = es.get("healthcheck", {}).get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert "curl" in text and "_cluster/health?wait_for_status=yellow" in text


def test_elasticsearch_version_matches_python_client(
    services: dict[str, dict[str, Any]], pyproject: dict[str, Any]
) -> None:
    reqs = [Requirement(d) for d in pyproject["project"]["dependencies"]]
    es_reqs = [r for r in reqs if r.name == "elasticsearch"]
    assert len(es_reqs) == 1, "pyproject.toml must depend on the elasticsearch client exactly once"
    spec = es_reqs[0].specifier
    lower = [Version(s.version) for s in spec if s.operator in {">=", "==", "~=", ">"}]
    assert lower, f"elasticsearch client bound {spec} has no lower bound"
    client_major = min(lower).major

    server = _image_version(str(_service(services, "elasticsearch")["image"]))
    assert server.major == client_major, f"server {server} vs client major {client_major} ({spec})"
    # The server must be at least the client's minor (an 8.13 client needs an 8.13+ server)
    # and inside the declared bound.
    assert spec.contains(str(server)), f"server {server} outside client bound {spec}"


def test_kibana_matches_elasticsearch(services: dict[str, dict[str, Any]]) -> None:
    kibana = _service(services, "kibana")
    es = _service(services, "elasticsearch")
    assert str(kibana.get("image", "")).startswith("docker.elastic.co/kibana/kibana:")
    assert _image_version(str(kibana["image"])) == _image_version(str(es["image"])), (
        "Kibana's version must equal Elasticsearch's"
    )
    url = urlsplit(_env(kibana).get("ELASTICSEARCH_HOSTS", ""))
    assert url.hostname in _names_of(services, "elasticsearch")
    assert url.port == 9200
    depends = kibana.get("depends_on") or {}
    assert isinstance(depends, dict) and depends.get("elasticsearch", {}).get("condition") == (
        "service_healthy"
    )


@pytest.mark.parametrize(
    ("name", "port"), [("kafka", 9092), ("elasticsearch", 9200), ("kibana", 5601), ("worker", 6066)]
)
def test_port_published(services: dict[str, dict[str, Any]], name: str, port: int) -> None:
    assert (port, port) in _port_mappings(_service(services, name)), f"{name} must publish {port}:{port}"


# --------------------------------------------------------------------------- worker


@pytest.mark.parametrize("variable", CONFIG_CONTRACT)
def test_worker_defines_config_variable(services: dict[str, dict[str, Any]], variable: str) -> None:
    env = _env(_service(services, "worker"))
    assert env.get(variable, "").strip(), f"worker environment does not define {variable}"


def test_worker_kafka_bootstrap_points_at_kafka_service(services: dict[str, dict[str, Any]]) -> None:
    bootstrap = _env(_service(services, "worker")).get("KAFKA_BOOTSTRAP_SERVERS", "")
    advertised = _listeners(_env(_service(services, "kafka")).get("KAFKA_ADVERTISED_LISTENERS", ""))
    servers = [s.strip() for s in bootstrap.split(",") if s.strip()]
    assert servers, "KAFKA_BOOTSTRAP_SERVERS is empty"
    for server in servers:
        host, _, port = server.rpartition(":")
        assert host in _names_of(services, "kafka"), f"{server} is not the kafka service"
        # The broker must advertise exactly this address, or clients are redirected elsewhere.
        assert (host, int(port)) in advertised.values(), f"{server} is not an advertised Kafka listener"


def test_worker_elasticsearch_url_points_at_elasticsearch_service(
    services: dict[str, dict[str, Any]],
) -> None:
    url = urlsplit(_env(_service(services, "worker")).get("ELASTICSEARCH_URL", ""))
    assert url.scheme == "http", "security is disabled, so Elasticsearch speaks plain http"
    assert url.hostname in _names_of(services, "elasticsearch")
    es = _service(services, "elasticsearch")
    es_port = int(_env(es).get("http.port", "9200"))
    assert (url.port or 80) == es_port
    assert es_port in {container for _, container in _port_mappings(es)}


def test_worker_settings_consistent(services: dict[str, dict[str, Any]], compose: dict[str, Any]) -> None:
    worker = _service(services, "worker")
    env = _env(worker)
    command = worker.get("command")
    assert command in ("worker", ["worker"]), f"worker command is {command!r}"
    assert env.get("EVENTS_TOPIC") == "user-activity"
    assert env.get("ES_INDEX") == "clickstream-minutely"
    assert env.get("APP_ID") == "clickagg"
    assert int(env["WINDOW_SECONDS"]) == 60
    assert int(env["ALLOWED_LATENESS_SECONDS"]) >= 0 and int(env["IDLE_TIMEOUT_SECONDS"]) > 0

    # The HTTP port the worker listens on is the one published.
    web_port = int(env["WEB_PORT"])
    assert web_port in {container for _, container in _port_mappings(worker)}

    volumes = [str(v) for v in worker.get("volumes") or []]
    targets = {v.split(":")[1]: v.split(":")[0] for v in volumes if ":" in v}
    # DATA_DIR lives on a named volume declared at the top level.
    assert env["DATA_DIR"] in targets, "DATA_DIR is not a volume mount"
    assert targets[env["DATA_DIR"]] in (compose.get("volumes") or {}), "DATA_DIR must be a named volume"
    # REFERENCE_DATA is a file inside a mounted directory (examples/data on the host).
    ref = PurePosixPath(env["REFERENCE_DATA"])
    assert any(ref.is_relative_to(target) for target in targets if target != env["DATA_DIR"]), (
        f"REFERENCE_DATA {ref} is not under a mounted volume"
    )
    assert "./examples/data:/data:ro" in volumes


def test_worker_waits_for_healthy_dependencies(services: dict[str, dict[str, Any]]) -> None:
    depends = _service(services, "worker").get("depends_on") or {}
    assert isinstance(depends, dict), "worker depends_on must use the long form with conditions"
    for dep in ("kafka", "elasticsearch"):
        assert depends.get(dep, {}).get("condition") == "service_healthy", dep
    # `service_healthy` only works if the dependency has a healthcheck.
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, dict):
            for dep, cond in deps.items():
                if (cond or {}).get("condition") == "service_healthy":
                    assert _service(services, dep).get("healthcheck"), (
                        f"{name} waits on {dep} without healthcheck"
                    )


# --------------------------------------------------------------------------- Dockerfile


def test_worker_builds_from_existing_dockerfile(services: dict[str, dict[str, Any]]) -> None:
    assert _worker_dockerfile(services).is_file()


def test_dockerfile_entrypoint_is_console_script(
    services: dict[str, dict[str, Any]], pyproject: dict[str, Any]
) -> None:
    final = _final_stage(_dockerfile_instructions(_worker_dockerfile(services)))
    entrypoints = [args for kw, args in final if kw == "ENTRYPOINT"]
    assert entrypoints, "Dockerfile final stage has no ENTRYPOINT"
    assert _exec_form(entrypoints[-1]) == ["clickagg"]
    assert "clickagg" in pyproject["project"]["scripts"], "pyproject.toml defines no `clickagg` script"
    cmds = [args for kw, args in final if kw == "CMD"]
    assert cmds and _exec_form(cmds[-1]) == ["worker"]


def test_dockerfile_base_install_user_port(services: dict[str, dict[str, Any]]) -> None:
    instructions = _dockerfile_instructions(_worker_dockerfile(services))
    froms = [args.split()[0] for kw, args in instructions if kw == "FROM"]
    assert froms and all(f == "python:3.11-slim" for f in froms), froms
    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert re.search(r"pip install\b[^&|;]*\s\.(\s|$|&|;)", runs), "the project is not pip-installed"

    final = _final_stage(instructions)
    users = [args.split(":")[0] for kw, args in final if kw == "USER"]
    assert users and users[-1] not in {"root", "0"}, "the runtime stage must run as a non-root user"
    exposed = {p.split("/")[0] for kw, args in final if kw == "EXPOSE" for p in args.split()}
    assert "6066" in exposed


def test_dockerignore_excludes_local_state() -> None:
    path = ROOT / ".dockerignore"
    assert path.is_file()
    patterns = {
        line.strip()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv"} <= patterns
    # The build needs these; excluding them would break `pip install .`.
    for needed in ("pyproject.toml", "clickagg", "README.md", "*.md", "*.toml", "*"):
        assert needed not in patterns, f".dockerignore must not exclude {needed}"


def test_worker_takes_connection_settings_from_an_optional_env_file(
    services: dict[str, dict[str, Any]],
) -> None:
    """README "Connecting to your clusters": ./clickagg.env, optional, for KAFKA_* / ELASTICSEARCH_*."""
    entries = services["worker"].get("env_file") or []
    assert {"path": "./clickagg.env", "required": False} in entries


def test_the_users_env_file_overrides_every_default(services: dict[str, dict[str, Any]]) -> None:
    """Compose ranks `environment:` above every env file, and a later env file above an earlier one:
    so the worker's defaults are an env file listed before ./clickagg.env and `environment:` is
    empty, or a KAFKA_BOOTSTRAP_SERVERS in clickagg.env would silently lose to kafka:29092."""
    worker = services["worker"]
    assert not worker.get("environment"), "anything in environment: would beat ./clickagg.env"
    entries = worker["env_file"]
    assert entries[-1] == {"path": "./clickagg.env", "required": False}, "clickagg.env must come last"
    assert _env_files(worker)["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:29092"


# --------------------------------------------------------------------------- profiles


DEFAULT_SERVICES = {"kafka", "elasticsearch", "kibana", "kibana-setup", "worker"}
PROFILES = {
    "monitoring": {"prometheus", "grafana"},
    "opensearch": {"opensearch", "opensearch-dashboards", "worker-opensearch"},
}


def test_profiles_keep_the_default_stack_as_it_was(services: dict[str, dict[str, Any]]) -> None:
    """`docker compose up` starts the default services only; each extra one is behind its profile."""
    assert {n for n, s in services.items() if not s.get("profiles")} == DEFAULT_SERVICES
    for profile, names in PROFILES.items():
        assert {n for n, s in services.items() if profile in (s.get("profiles") or [])} == names


def test_no_two_services_publish_the_same_host_port(services: dict[str, dict[str, Any]]) -> None:
    seen: dict[int, str] = {}
    for name, svc in services.items():
        for port in _published(svc):
            assert port not in seen, f"{name} and {seen[port]} both publish {port}"
            seen[port] = name


def test_opensearch_is_2_19_single_node_without_security(services: dict[str, dict[str, Any]]) -> None:
    from clickagg.stack.layout import OPENSEARCH_VERSION

    node = _service(services, "opensearch")
    image = str(node.get("image", ""))
    assert image.startswith("opensearchproject/opensearch:")
    version = _image_version(image)
    assert (version.major, version.minor) == (2, 19)
    # The same minor as `clickagg stack up opensearch`, which the integration tests run against.
    assert (version.major, version.minor) == Version(OPENSEARCH_VERSION).release[:2]
    env = _env(node)
    assert env.get("discovery.type") == "single-node"
    assert env.get("DISABLE_SECURITY_PLUGIN") == "true"
    assert env.get("DISABLE_INSTALL_DEMO_CONFIG") == "true", "no demo config: it needs an admin password"
    # Published where `clickagg stack up opensearch` puts it (9201), so host tools work with either.
    assert (9201, 9200) in _port_mappings(node)
    test = node.get("healthcheck", {}).get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert "http://localhost:9200/_cluster/health" in text, "plain http: the security plugin is off"


def test_opensearch_dashboards_matches_the_node(services: dict[str, dict[str, Any]]) -> None:
    dashboards = _service(services, "opensearch-dashboards")
    assert str(dashboards.get("image", "")).startswith("opensearchproject/opensearch-dashboards:")
    assert _image_version(str(dashboards["image"])) == _image_version(str(services["opensearch"]["image"]))
    env = _env(dashboards)
    assert env.get("DISABLE_SECURITY_DASHBOARDS_PLUGIN") == "true"
    hosts = json.loads(env["OPENSEARCH_HOSTS"])
    assert [urlsplit(h).hostname for h in hosts] == ["opensearch"] and urlsplit(hosts[0]).port == 9200
    assert dashboards.get("depends_on", {}).get("opensearch", {}).get("condition") == "service_healthy"
    assert (5602, 5601) in _port_mappings(dashboards)


def test_worker_opensearch_is_its_own_deployment_writing_to_opensearch(
    services: dict[str, dict[str, Any]],
) -> None:
    worker, other = _service(services, "worker"), _service(services, "worker-opensearch")
    env, default_env = _env(other), _env(worker)
    for variable in CONFIG_CONTRACT:
        assert env.get(variable, "").strip(), f"worker-opensearch does not define {variable}"
    url = urlsplit(env["ELASTICSEARCH_URL"])
    assert url.scheme == "http" and url.hostname in _names_of(services, "opensearch") and url.port == 9200
    assert env.get("SEARCH_ENGINE") == "opensearch"
    # SPEC "Deployments on a shared cluster": its own APP_ID (consumer groups, internal topics).
    assert env["APP_ID"] != default_env["APP_ID"]
    assert (
        env["EVENTS_TOPIC"] == default_env["EVENTS_TOPIC"]
        and env["KAFKA_BOOTSTRAP_SERVERS"] == (default_env["KAFKA_BOOTSTRAP_SERVERS"])
    )
    assert other.get("image") == worker.get("image") and other.get("build") == worker.get("build")
    assert other.get("command") == worker.get("command")
    volumes = [str(v) for v in other.get("volumes") or []]
    state = {v.split(":")[1]: v.split(":")[0] for v in volumes if ":" in v}[env["DATA_DIR"]]
    default_state = {str(v).split(":")[1]: str(v).split(":")[0] for v in worker.get("volumes") or []}
    assert state != default_state[default_env["DATA_DIR"]], "each deployment keeps its own local state"
    assert int(env["WEB_PORT"]) in {container for _, container in _port_mappings(other)}
    depends = other.get("depends_on") or {}
    for dep in ("kafka", "opensearch"):
        assert depends.get(dep, {}).get("condition") == "service_healthy", dep


def test_kibana_objects_stay_with_elasticsearch(services: dict[str, dict[str, Any]]) -> None:
    """Kibana and its saved-object import talk to Elasticsearch only, never to OpenSearch."""
    for name in ("kibana", "kibana-setup"):
        svc = services[name]
        assert not svc.get("profiles"), f"{name} belongs to the default (Elasticsearch) stack"
        assert "opensearch" not in json.dumps(svc).lower(), name
