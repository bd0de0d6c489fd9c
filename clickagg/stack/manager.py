"""`clickagg stack up|down|status|restart`: the local real Kafka + Elasticsearch, without Docker."""

from __future__ import annotations

import functools

from clickagg.stack import procs
from clickagg.stack import secure as secure_stack
from clickagg.stack.layout import StackError, StackLayout
from clickagg.stack.opensearch import opensearch_service
from clickagg.stack.services import Service, elasticsearch_service, java_major, kafka_service, wait_healthy

OPT_IN = ("opensearch",)  # started only when named; `down` and `status` still cover them


def services(
    layout: StackLayout, only: str | None = None, opt_in: bool = False, secure: bool = False
) -> list[Service]:
    listener = secure_stack.kafka_listener(layout) if secure else None  # `up --secure`: + SASL_SSL
    all_services = [
        kafka_service(layout, listener),
        elasticsearch_service(layout),
        opensearch_service(layout),
    ]
    if only is None:
        return [s for s in all_services if opt_in or s.name not in OPT_IN]
    chosen = [s for s in all_services if s.name == only]
    if not chosen:
        raise StackError(f"unknown service {only!r}; choose kafka, elasticsearch or opensearch")
    return chosen


def up(layout: StackLayout, only: str | None = None, secure: bool = False) -> list[str]:
    """Start what is not running yet and wait until healthy; running twice is harmless.

    secure: also the SASL_SSL listener and TLS + auth for Elasticsearch (clickagg/stack/secure.py).
    """
    if java_major() < 17:
        raise StackError("Java 17 or newer is required (java -version reports an older one)")
    plan = secure_stack.prepare(layout, only) if secure else None
    lines = []
    for service in services(layout, only, secure=secure):
        pid_file = layout.pid_file(service.name)
        log = layout.log_file(service.name)
        pid = procs.owned_pid(pid_file, service.tag(layout))
        if pid is None:
            if procs.port_in_use(service.port):
                raise StackError(
                    f"port {service.port} for {service.name} is taken by another process; "
                    f"stop it or choose another port (CLICKAGG_{_port_var(service.name)}_PORT)"
                )
            service.install()
            pid = procs.spawn(service.command(), pid_file, log)
        wait_healthy(service, functools.partial(procs.alive, pid), log, layout.health_timeout_s)
        lines.append(f"{service.name:<14} {service.url:<28} pid {pid}  log {log}")
    if plan is not None:
        lines += secure_stack.finish(layout, plan, layout.health_timeout_s)
    return lines


def _port_var(name: str) -> str:
    return {"kafka": "KAFKA", "opensearch": "OPENSEARCH"}.get(name, "ES")


def down(layout: StackLayout, only: str | None = None, kill: bool = False, opt_in: bool = True) -> list[str]:
    """Stop only the processes this stack started (pid file + command-line tag must both match)."""
    import signal

    lines = secure_stack.down(layout, kill) if only in (None, "elasticsearch") else []
    for service in reversed(services(layout, only, opt_in=opt_in)):
        pid = procs.owned_pid(layout.pid_file(service.name), service.tag(layout))
        if pid is None:
            lines.append(f"{service.name:<14} not running")
            continue
        procs.stop(pid, sig=signal.SIGKILL if kill else signal.SIGTERM)
        layout.pid_file(service.name).unlink(missing_ok=True)
        lines.append(f"{service.name:<14} stopped (pid {pid})")
    return lines


def status(layout: StackLayout) -> tuple[bool, list[str]]:
    """What runs where; the bool is True when every service is running and healthy."""
    ok = True
    lines = []
    for service in services(layout, opt_in=True):
        pid = procs.owned_pid(layout.pid_file(service.name), service.tag(layout))
        if pid is None and service.name in OPT_IN:
            lines.append(f"{service.name:<14} stopped (opt-in: clickagg stack up {service.name})")
            continue
        if pid is None:
            ok = False
            lines.append(f"{service.name:<14} stopped")
            continue
        healthy = service.healthy()
        ok = ok and healthy
        state = "healthy" if healthy else "starting/unhealthy"
        lines.append(
            f"{service.name:<14} {state:<18} {service.url:<28} pid {pid}  log {layout.log_file(service.name)}"
        )
    secure_ok, secure_lines = secure_stack.status(layout)  # none unless `up --secure` ran
    return ok and secure_ok, lines + secure_lines
