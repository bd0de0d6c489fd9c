"""The port flags and CLICKAGG_STACK_DIR must describe the same stack, or `clickagg stack` refuses.

Why: pid files live in the stack dir, ports come from flags or variables. `stack status --kafka-port
19092` with the default stack dir used to report the broker running on 9092 as if it were on 19092
(and `up` would have started a second broker on the same data). The running services say which
ports they really use: Elasticsearch and OpenSearch on their command line, Kafka in its properties.
"""

from __future__ import annotations

import re

from clickagg.stack import procs
from clickagg.stack.layout import StackError, StackLayout

# service -> (the layout's port attribute, the command-line property with the real port, its variable)
_CMDLINE_PORT = {
    "elasticsearch": ("es_port", r"-Dclickagg\.es\.http_port=(\d+)", "CLICKAGG_ES_PORT", "--es-port"),
    "opensearch": ("opensearch_port", r"-Dclickagg\.os\.http_port=(\d+)", "CLICKAGG_OPENSEARCH_PORT", ""),
}
_KAFKA_LISTENER = re.compile(r"^listeners=.*PLAINTEXT://[^:,]*:(\d+)", re.M)


def running_port(layout: StackLayout, name: str) -> int | None:
    """The port the service of this stack dir runs on; None if it does not run (or cannot tell)."""
    pid = procs.owned_pid(layout.pid_file(name), f"-Dclickagg.stack={layout.service_dir(name)}")
    if pid is None:
        return None
    if name == "kafka":
        try:
            text = (layout.service_dir(name) / "server.properties").read_text()
        except OSError:
            return None
        found = _KAFKA_LISTENER.search(text)
    else:
        found = re.search(_CMDLINE_PORT[name][1], procs.cmdline(pid))
    return int(found.group(1)) if found else None


def check(layout: StackLayout) -> None:
    """StackError (one line) when a service of this stack dir runs on another port than asked for."""
    wanted = {
        "kafka": (layout.kafka_port, "CLICKAGG_KAFKA_PORT", "--kafka-port"),
        **{n: (getattr(layout, a), var, flag) for n, (a, _, var, flag) in _CMDLINE_PORT.items()},
    }
    for name, (port, var, flag) in wanted.items():
        real = running_port(layout, name)
        if real is not None and real != port:
            how = f"{flag} {real} (or {var}={real})" if flag else f"{var}={real}"
            raise StackError(
                f"the stack in CLICKAGG_STACK_DIR={layout.state_dir} runs {name} on port {real}, not {port}: "
                f"use {how}, or another CLICKAGG_STACK_DIR for a stack on {port}"
            )
