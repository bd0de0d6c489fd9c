"""`clickagg stack up --secure`: the local stack's authenticated, encrypted endpoints, next to the plain ones.

- Kafka: one more listener, SASL_SSL on `CLICKAGG_KAFKA_SECURE_PORT` (9094, advertised as localhost),
  SCRAM-SHA-512, with a server certificate signed by the stack's own CA (`certs.py`). The user is created
  when the KRaft storage is formatted (`kafka-storage format --add-scram`). A data dir formatted earlier
  by a plain `stack up` gets it from `kafka-configs --alter --add-config 'SCRAM-SHA-512=[password=...]'`
  against the running broker instead, once per cluster id and password (`secure/kafka-scram-user`
  records it). Both tools get the password from a 0600 java @argfile, never on a command line, and
  their output reaches the log redacted (`javatool.py`). A broker already running without the listener
  is refused with the commands that add it (it is never restarted behind its clients' backs). The
  PLAINTEXT listener, the controller and inter-broker traffic stay as they are.
- Elasticsearch: the node's own security (x-pack) cannot run from Maven Central jars (x-pack-security
  8.19 needs OpenSAML 4.3, which is only in Shibboleth's repository), so nginx on
  `CLICKAGG_ES_SECURE_PORT` (9243) terminates TLS, accepts HTTP basic auth (htpasswd, SHA-512 crypt) or
  `Authorization: ApiKey <base64(id:key)>` for the one generated key, answers anything else with a 401
  shaped like Elasticsearch's, and passes the rest to the plain node (its Authorization header removed).

Secrets are random per stack (`secrets.token_urlsafe`) and kept in `<stack dir>/secure/` (0700; secret
files 0600), reused by later `up --secure` runs. The client settings go to `<stack dir>/secure.env`
(user + password) and `<stack dir>/secure-apikey.env` (the API key instead), both 0600.
"""

from __future__ import annotations

import base64
import functools
import grp
import hashlib
import json
import os
import pwd
import secrets as token
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from clickagg.stack import certs, javatool, procs
from clickagg.stack.fetch import require_tool
from clickagg.stack.layout import StackError, StackLayout
from clickagg.stack.services import KafkaListener

MECHANISM = "SCRAM-SHA-512"
LISTENER = "SASL_SSL"
KAFKA_USER = "clickagg"
ES_USER = "clickagg"
NGINX = "nginx"  # service dir <stack dir>/nginx: nginx.conf, pid, service.log


def secure_dir(layout: StackLayout) -> Path:
    return layout.state_dir / "secure"


def env_file(layout: StackLayout) -> Path:
    return layout.state_dir / "secure.env"


def apikey_env_file(layout: StackLayout) -> Path:
    return layout.state_dir / "secure-apikey.env"


def kafka_secure_bootstrap(layout: StackLayout) -> str:
    return f"localhost:{layout.kafka_secure_port}"


def es_secure_url(layout: StackLayout) -> str:
    return f"https://localhost:{layout.es_secure_port}"


# --- secrets ------------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Replace path with text, readable by its owner only (never briefly readable by others)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _secret(path: Path, make: Callable[[], str]) -> str:
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        value = make()
        _write_private(path, value)
    return value


@dataclass(frozen=True)
class Secrets:
    kafka_password: str
    es_password: str
    api_key_id: str
    api_key: str

    @property
    def api_key_encoded(self) -> str:
        """What `Authorization: ApiKey ...` carries and what ELASTICSEARCH_API_KEY holds: base64(id:key)."""
        return base64.b64encode(f"{self.api_key_id}:{self.api_key}".encode()).decode()


def secret_files(layout: StackLayout) -> dict[str, Path]:
    d = secure_dir(layout)
    return {
        "kafka_password": d / "kafka-password",
        "es_password": d / "elasticsearch-password",
        "api_key_id": d / "elasticsearch-api-key-id",
        "api_key": d / "elasticsearch-api-key-secret",
        "api_key_encoded": d / "elasticsearch-api-key",
    }


def load_secrets(layout: StackLayout) -> Secrets:
    """This stack's passwords and API key, generated on first use."""
    d = secure_dir(layout)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    files = secret_files(layout)
    found = Secrets(
        kafka_password=_secret(files["kafka_password"], lambda: token.token_urlsafe(24)),
        es_password=_secret(files["es_password"], lambda: token.token_urlsafe(24)),
        api_key_id=_secret(files["api_key_id"], lambda: token.token_urlsafe(15)),
        api_key=_secret(files["api_key"], lambda: token.token_urlsafe(24)),
    )
    if not files["api_key_encoded"].exists() or files["api_key_encoded"].read_text() != found.api_key_encoded:
        _write_private(files["api_key_encoded"], found.api_key_encoded)
    return found


# --- Kafka: the SASL_SSL listener ---------------------------------------------------------------


def kafka_listener(layout: StackLayout) -> KafkaListener:
    """The broker's secure listener: SCRAM-SHA-512 over TLS; the user is added when storage is formatted."""
    pem = certs.paths(secure_dir(layout)).server_pem
    password = load_secrets(layout).kafka_password
    prefix = f"listener.name.{LISTENER.lower()}"
    return KafkaListener(
        name=LISTENER,
        protocol="SASL_SSL",
        bind=f"127.0.0.1:{layout.kafka_secure_port}",
        advertised=kafka_secure_bootstrap(layout),
        properties=(
            f"sasl.enabled.mechanisms={MECHANISM}",
            f"{prefix}.sasl.enabled.mechanisms={MECHANISM}",
            f"{prefix}.{MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            f"{prefix}.ssl.keystore.type=PEM",
            f"{prefix}.ssl.keystore.location={pem}",
            f"{prefix}.ssl.client.auth=none",
        ),
        format_args=("--add-scram", f"{MECHANISM}=[name={KAFKA_USER},password={password}]"),
        secrets=(password,),
    )


def _kafka_props(layout: StackLayout) -> Path:
    return layout.service_dir("kafka") / "server.properties"


def _kafka_runs_secure(layout: StackLayout) -> bool:
    """The running broker was started with the SASL_SSL listener (its properties are written at start)."""
    try:
        text = _kafka_props(layout).read_text()
    except OSError:
        return False
    return f",{LISTENER}://127.0.0.1:{layout.kafka_secure_port}" in text


def _kafka_pid(layout: StackLayout) -> int | None:
    tag = f"-Dclickagg.stack={layout.service_dir('kafka')}"
    return procs.owned_pid(layout.pid_file("kafka"), tag)


def _cluster_id(layout: StackLayout) -> str | None:
    try:
        for line in (layout.service_dir("kafka") / "data" / "meta.properties").read_text().splitlines():
            if line.startswith("cluster.id="):
                return line.split("=", 1)[1].strip()
    except OSError:
        return None
    return None


def _scram_marker(layout: StackLayout) -> Path:
    return secure_dir(layout) / "kafka-scram-user"


def _scram_stamp(layout: StackLayout, cluster_id: str) -> str:
    """Which cluster holds the SCRAM user with the current password (a digest, not the password)."""
    digest = hashlib.sha256(f"{KAFKA_USER}:{load_secrets(layout).kafka_password}".encode()).hexdigest()
    return f"{cluster_id} {digest[:32]}"


def _add_scram_user(layout: StackLayout, timeout_s: float) -> None:
    """Create or update the SCRAM user on a running broker whose storage was formatted without it."""
    java = require_tool("java", "install a Java 17+ runtime")
    log = layout.log_file("kafka")
    home = layout.service_dir("kafka")
    password = load_secrets(layout).kafka_password
    jvm = [java, f"-Dlog4j.configuration=file:{home / 'log4j.properties'}", "-cp", f"{layout.kafka_lib}/*"]
    tool = [
        "kafka.admin.ConfigCommand", "--bootstrap-server", layout.kafka_bootstrap, "--alter",
        "--entity-type", "users", "--entity-name", KAFKA_USER,
        "--add-config", f"{MECHANISM}=[password={password}]",
    ]  # fmt: skip
    code = javatool.run(jvm, tool, [password], log, secure_dir(layout), timeout_s)
    if code != 0:
        raise StackError(f"adding the Kafka SCRAM user with kafka-configs failed; see {log}")


def kafka_client_ssl_context(ca_file: Path) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    return create_ssl_context(cafile=str(ca_file))


def kafka_secure_answers(layout: StackLayout, timeout_s: float = 5.0) -> bool:
    """True when the SASL_SSL listener completes TLS + SCRAM with the stack's user and serves metadata."""
    from clickagg.stack.services import kafka_answers_metadata

    ca = certs.paths(secure_dir(layout)).ca_cert
    return kafka_answers_metadata(
        kafka_secure_bootstrap(layout),
        timeout_s,
        security_protocol="SASL_SSL",
        sasl_mechanism=MECHANISM,
        sasl_plain_username=KAFKA_USER,
        sasl_plain_password=load_secrets(layout).kafka_password,
        ssl_context=kafka_client_ssl_context(ca),
    )


# --- Elasticsearch: nginx in front ----------------------------------------------------------------


def _nginx_home(layout: StackLayout) -> Path:
    return layout.service_dir(NGINX)


def _nginx_conf(layout: StackLayout) -> Path:
    return _nginx_home(layout) / "nginx.conf"


def _nginx_tag(layout: StackLayout) -> str:
    return f"-Dclickagg.stack={_nginx_home(layout)}"


def nginx_pid(layout: StackLayout) -> int | None:
    return procs.owned_pid(layout.pid_file(NGINX), _nginx_tag(layout))


def _nginx_command(layout: StackLayout, test: bool = False) -> list[str]:
    nginx = require_tool("nginx", "install nginx (e.g. `apt-get install nginx`) for `stack up --secure`")
    home = _nginx_home(layout)
    # The tag rides in a harmless `env` directive, so `down` recognises the master process as ours.
    globals_ = f"env CLICKAGG_STACK_TAG={_nginx_tag(layout)};" + ("" if test else " daemon off;")
    return [nginx, *(["-t", "-q"] if test else []), "-p", f"{home}/", "-c", str(_nginx_conf(layout)),
            "-e", "stderr", "-g", globals_]  # fmt: skip


def _sha512_crypt(password: str, log: Path, salt: str | None = None) -> str:
    openssl = require_tool("openssl", "install OpenSSL (e.g. `apt-get install openssl`)")
    with log.open("ab") as err:
        proc = subprocess.run(
            [openssl, "passwd", "-6", *(["-salt", salt] if salt else []), "-stdin"],
            input=password.encode(), stdout=subprocess.PIPE, stderr=err, check=False,
        )  # fmt: skip
    if proc.returncode != 0:
        raise StackError(f"openssl passwd failed; see {log}")
    return proc.stdout.decode().strip()


def _ensure_htpasswd(path: Path, user: str, password: str, log: Path) -> None:
    """One user, SHA-512 crypt (what `openssl passwd -6` makes); rewritten only when the password changed."""
    try:
        name, hashed = path.read_text().strip().split(":", 1)
        salt = hashed.split("$")[2]
        if name == user and _sha512_crypt(password, log, salt) == hashed:
            return
    except (OSError, ValueError, IndexError):
        pass
    _write_private(path, f"{user}:{_sha512_crypt(password, log)}\n")


def _nginx_escape(text: str) -> str:
    """A literal for a single-quoted nginx string."""
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _regex_escape(text: str) -> str:
    return "".join("\\" + c if not (c.isalnum() or c in "_-:") else c for c in text)


def _unauthorized_body() -> str:
    """Elasticsearch's 401 answer, with the reason filled in by nginx ($clickagg_auth_reason)."""
    challenge = {"WWW-Authenticate": ['Basic realm="security", charset="UTF-8"', "ApiKey"]}
    cause = {"type": "security_exception", "reason": "@REASON@", "header": challenge}
    body = json.dumps({"error": {"root_cause": [cause], **cause}, "status": 401}, separators=(",", ":"))
    return _nginx_escape(body).replace("@REASON@", "$clickagg_auth_reason")


def nginx_config(layout: StackLayout, api_key_encoded: str) -> str:
    home = _nginx_home(layout)
    sec = certs.paths(secure_dir(layout))
    htpasswd = secure_dir(layout) / "htpasswd"
    user = ""
    if os.geteuid() == 0:  # workers read the 0600 htpasswd: they run as the owner, not as nobody
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name} {grp.getgrgid(os.getegid()).gr_name};\n"
    tmp = home / "tmp"
    return f"""# Written by `clickagg stack up --secure` (holds the stack's API key: keep it 0600).
{user}worker_processes 1;
pid {home / "nginx.pid"};
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    server_tokens off;
    client_body_temp_path {tmp / "body"};
    proxy_temp_path {tmp / "proxy"};
    fastcgi_temp_path {tmp / "fastcgi"};
    uwsgi_temp_path {tmp / "uwsgi"};
    scgi_temp_path {tmp / "scgi"};

    # The one API key: basic auth is off for exactly this header (case-sensitive regex), on otherwise.
    map $http_authorization $clickagg_basic_realm {{
        default "security";
        "~^ApiKey {_regex_escape(api_key_encoded)}$" off;
    }}
    map $http_authorization $clickagg_auth_reason {{
        default "unable to authenticate with provided credentials and anonymous access is not allowed for this request";
        "" "missing authentication credentials for REST request";
    }}
    upstream clickagg_elasticsearch {{
        server 127.0.0.1:{layout.es_port};
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{layout.es_secure_port} ssl;
        ssl_certificate {sec.server_cert};
        ssl_certificate_key {sec.server_key};
        ssl_protocols TLSv1.2 TLSv1.3;
        client_max_body_size 100m;
        auth_basic $clickagg_basic_realm;
        auth_basic_user_file {htpasswd};
        error_page 401 = @unauthorized;

        location / {{
            proxy_pass http://clickagg_elasticsearch;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "";
            proxy_request_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
        }}
        location @unauthorized {{
            auth_basic off;
            default_type application/json;
            add_header WWW-Authenticate 'ApiKey' always;
            add_header X-Elastic-Product Elasticsearch always;
            return 401 '{_unauthorized_body()}';
        }}
    }}
}}
"""


def es_secure_healthy(layout: StackLayout, timeout_s: float = 5.0) -> bool:
    """True when the TLS endpoint (trusting only the stack's CA) lets the stack's user through to the node."""
    ca = certs.paths(secure_dir(layout)).ca_cert
    password = load_secrets(layout).es_password
    auth = base64.b64encode(f"{ES_USER}:{password}".encode()).decode()
    req = urllib.request.Request(
        f"{es_secure_url(layout)}/_cluster/health", headers={"Authorization": f"Basic {auth}"}
    )
    try:
        context = ssl.create_default_context(cafile=str(ca))
        with urllib.request.urlopen(req, timeout=timeout_s, context=context) as resp:
            body = json.loads(resp.read())
            product = resp.headers.get("X-Elastic-Product")
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return product == "Elasticsearch" and body.get("status") in ("yellow", "green")


def _start_nginx(layout: StackLayout, api_key_encoded: str, timeout_s: float) -> tuple[int, str]:
    home = _nginx_home(layout)
    log = layout.log_file(NGINX)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (home / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    conf = _nginx_conf(layout)
    text = nginx_config(layout, api_key_encoded)
    changed = not conf.exists() or conf.read_text() != text
    if changed:
        _write_private(conf, text)
    pid = nginx_pid(layout)
    if pid is not None and not changed:
        return pid, "running"
    with log.open("ab") as out:
        checked = subprocess.run(
            _nginx_command(layout, test=True), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if checked.returncode != 0:
        raise StackError(f"nginx refused its configuration {conf}; see {log}")
    if pid is not None:
        os.kill(pid, signal.SIGHUP)  # new configuration, same process
        return pid, "reloaded"
    if procs.port_in_use(layout.es_secure_port):
        raise StackError(
            f"port {layout.es_secure_port} for the secure Elasticsearch endpoint is taken by another process; "
            "stop it or choose another port (CLICKAGG_ES_SECURE_PORT)"
        )
    pid = procs.spawn(_nginx_command(layout), layout.pid_file(NGINX), log)
    return pid, "started"


def _wait(
    what: str, probe: Callable[[], bool], alive: Callable[[], bool], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if probe():
            return
        if not alive():
            raise StackError(f"{what} exited during start-up; see {log}")
        time.sleep(0.2)
    raise StackError(f"{what} did not become healthy within {timeout_s:.0f}s; see {log}")


# --- client settings ------------------------------------------------------------------------------


def client_settings(layout: StackLayout, api_key: bool = False) -> dict[str, str]:
    """What a client needs for the secure endpoints: secure.env (user + password) or secure-apikey.env."""
    found = load_secrets(layout)
    ca = str(certs.paths(secure_dir(layout)).ca_cert)
    settings = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_secure_bootstrap(layout),
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": MECHANISM,
        "KAFKA_SASL_USERNAME": KAFKA_USER,
        "KAFKA_SASL_PASSWORD": found.kafka_password,
        "KAFKA_SSL_CA_LOCATION": ca,
        "ELASTICSEARCH_URL": es_secure_url(layout),
    }
    if api_key:
        settings["ELASTICSEARCH_API_KEY"] = found.api_key_encoded
    else:
        settings["ELASTICSEARCH_USERNAME"] = ES_USER
        settings["ELASTICSEARCH_PASSWORD"] = found.es_password
    settings["ELASTICSEARCH_CA_CERTS"] = ca
    return settings


def _env_text(layout: StackLayout, api_key: bool) -> str:
    files = secret_files(layout)
    head = [
        "# The local stack's secure endpoints (`clickagg stack up --secure`). Holds secrets: keep it private.",
        "# Use: set -a; . ./secure.env; set +a   (or docker --env-file, or python-dotenv)",
    ]
    if api_key:
        head.append("# Elasticsearch by API key (it wins over a user/password, so this file sets none).")
    else:
        head.append(f"# Elasticsearch by API key instead of user + password: {apikey_env_file(layout)}")
    body = [f"{key}={value}" for key, value in client_settings(layout, api_key).items()]
    tail = [
        "# The same secrets as files (for *_FILE settings):",
        f"# KAFKA_SASL_PASSWORD_FILE={files['kafka_password']}",
        f"# ELASTICSEARCH_{'API_KEY' if api_key else 'PASSWORD'}_FILE="
        f"{files['api_key_encoded'] if api_key else files['es_password']}",
    ]
    return "\n".join([*head, *body, *tail, ""])


def write_env_files(layout: StackLayout) -> tuple[Path, Path]:
    for path, api_key in ((env_file(layout), False), (apikey_env_file(layout), True)):
        text = _env_text(layout, api_key)
        if not path.exists() or path.read_text() != text:
            _write_private(path, text)
    return env_file(layout), apikey_env_file(layout)


# --- what the manager calls -----------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What `up --secure` found before starting anything."""

    kafka: bool  # the Kafka part is wanted (no service named, or kafka)
    elasticsearch: bool
    kafka_formatted_before: bool  # its storage existed already (formatted by an earlier `up`)


def prepare(layout: StackLayout, only: str | None) -> Plan:
    """Before the services start: tools, secrets, certificates; refuse a running broker without the listener."""
    if only not in (None, "kafka", "elasticsearch"):
        raise StackError(f"--secure applies to kafka and elasticsearch, not {only}")
    want_kafka = only in (None, "kafka")
    want_es = only in (None, "elasticsearch")
    require_tool("openssl", "install OpenSSL (e.g. `apt-get install openssl`) for `stack up --secure`")
    if want_es:
        require_tool("nginx", "install nginx (e.g. `apt-get install nginx`) for `stack up --secure`")
    load_secrets(layout)
    certs.ensure(secure_dir(layout), layout.state_dir / "secure" / "openssl.log")
    if want_kafka:
        if _kafka_pid(layout) is not None and not _kafka_runs_secure(layout):
            raise StackError(
                "kafka is running without its SASL_SSL listener (started by a plain `stack up`) and is not "
                "restarted behind its clients' backs; to add the listener: "
                "clickagg stack down kafka && clickagg stack up --secure"
            )
        if _kafka_pid(layout) is None and procs.port_in_use(layout.kafka_secure_port):
            raise StackError(
                f"port {layout.kafka_secure_port} for Kafka's SASL_SSL listener is taken by another process; "
                "stop it or choose another port (CLICKAGG_KAFKA_SECURE_PORT)"
            )
    return Plan(
        kafka=want_kafka,
        elasticsearch=want_es,
        kafka_formatted_before=_cluster_id(layout) is not None,
    )


def finish(layout: StackLayout, plan: Plan, timeout_s: float) -> list[str]:
    """After the plain services are healthy: the SCRAM user, nginx, the env files; one line each."""
    lines = []
    if plan.kafka:
        cluster = _cluster_id(layout)
        if cluster is None:
            raise StackError(f"Kafka's storage has no cluster id; see {layout.log_file('kafka')}")
        marker = _scram_marker(layout)
        stamp = _scram_stamp(layout, cluster)
        how = f"user {KAFKA_USER} in place"
        if not marker.exists() or marker.read_text() != stamp:
            how = f"user {KAFKA_USER} created by the storage format"
            if plan.kafka_formatted_before:
                _add_scram_user(layout, timeout_s)
                how = f"user {KAFKA_USER} added with kafka-configs (storage formatted before --secure)"
            _write_private(marker, stamp)
        pid = _kafka_pid(layout)
        _wait(
            "Kafka's SASL_SSL listener",
            functools.partial(kafka_secure_answers, layout),
            lambda: pid is not None and procs.alive(pid),
            layout.log_file("kafka"),
            timeout_s,
        )
        lines.append(f"{'kafka-secure':<14} {kafka_secure_bootstrap(layout):<28} SASL_SSL {MECHANISM}, {how}")
    if plan.elasticsearch:
        found = load_secrets(layout)
        log = layout.log_file(NGINX)
        log.parent.mkdir(parents=True, exist_ok=True)
        _ensure_htpasswd(secure_dir(layout) / "htpasswd", ES_USER, found.es_password, log)
        pid, state = _start_nginx(layout, found.api_key_encoded, timeout_s)
        _wait(
            "nginx (TLS + auth for Elasticsearch)",
            functools.partial(es_secure_healthy, layout),
            functools.partial(procs.alive, pid),
            log,
            timeout_s,
        )
        lines.append(f"{'es-secure':<14} {es_secure_url(layout):<28} nginx pid {pid} ({state})  log {log}")
    env, apikey_env = write_env_files(layout)
    lines.append(f"{'secure.env':<14} {env}  (API key instead: {apikey_env.name})")
    return lines


def down(layout: StackLayout, kill: bool = False) -> list[str]:
    """Stop nginx if this stack started it; nothing to say when the stack was never secure."""
    pid = nginx_pid(layout)
    if pid is None:
        return [f"{'es-secure':<14} not running"] if _nginx_conf(layout).exists() else []
    procs.stop(pid, sig=signal.SIGKILL if kill else signal.SIGTERM)
    layout.pid_file(NGINX).unlink(missing_ok=True)
    return [f"{'es-secure':<14} stopped (nginx pid {pid})"]


def status(layout: StackLayout) -> tuple[bool, list[str]]:
    """The secure endpoints that should be up (never a secret); no lines for a stack that is not secure."""
    ok = True
    lines = []
    if _kafka_pid(layout) is not None and _kafka_runs_secure(layout):
        healthy = kafka_secure_answers(layout)
        ok = ok and healthy
        state = "healthy" if healthy else "starting/unhealthy"
        lines.append(
            f"{'kafka-secure':<14} {state:<18} {kafka_secure_bootstrap(layout):<28} "
            f"SASL_SSL {MECHANISM} user {KAFKA_USER}"
        )
    pid = nginx_pid(layout)
    if pid is not None:
        healthy = es_secure_healthy(layout)
        ok = ok and healthy
        state = "healthy" if healthy else "starting/unhealthy"
        lines.append(
            f"{'es-secure':<14} {state:<18} {es_secure_url(layout):<28} "
            f"nginx pid {pid}  log {layout.log_file(NGINX)}"
        )
    elif _nginx_conf(layout).exists():
        lines.append(f"{'es-secure':<14} stopped (clickagg stack up --secure)")
    if lines and env_file(layout).exists():
        lines.append(
            f"{'secure.env':<14} {env_file(layout)}  (API key instead: {apikey_env_file(layout).name})"
        )
    return ok, lines
