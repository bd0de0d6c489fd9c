# syntax=docker/dockerfile:1
#
# clickagg worker image.
#
#   docker build -t clickagg .
#   docker run --rm clickagg --help          # ENTRYPOINT is the `clickagg` console script
#   docker run --rm clickagg worker          # default CMD
#
# Configuration is by environment variables (see SPEC "Configuration contract"):
# KAFKA_BOOTSTRAP_SERVERS, EVENTS_TOPIC, ELASTICSEARCH_URL, ES_INDEX, REFERENCE_DATA,
# WINDOW_SECONDS, ALLOWED_LATENESS_SECONDS, IDLE_TIMEOUT_SECONDS, APP_ID, DATA_DIR, WEB_PORT.

# ---------------------------------------------------------------------------
# Build stage: a virtualenv with the project and its dependencies. A compiler is
# available here in case a dependency has no wheel for the target platform
# (e.g. some arm64 hosts); it does not reach the runtime image.
# ---------------------------------------------------------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/clickagg
ENV PATH=/opt/clickagg/bin:$PATH

WORKDIR /src

# Dependencies first (read from pyproject.toml with the stdlib's tomllib), so that
# editing the sources does not reinstall them on every build.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# Then the project itself (.dockerignore keeps the build context small).
COPY . .
RUN pip install --no-deps . \
 && clickagg --help > /dev/null

# ---------------------------------------------------------------------------
# Runtime stage.
# ---------------------------------------------------------------------------
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/clickagg/bin:$PATH \
    DATA_DIR=/var/lib/clickagg \
    WEB_PORT=6066 \
    WEB_BIND=0.0.0.0

COPY --from=build /opt/clickagg /opt/clickagg

# Unprivileged user; DATA_DIR exists and belongs to it, so a named volume mounted
# there is initialised with that ownership.
RUN groupadd --system --gid 10001 clickagg \
 && useradd --system --uid 10001 --gid clickagg --home-dir /var/lib/clickagg \
      --shell /usr/sbin/nologin clickagg \
 && mkdir -p /var/lib/clickagg \
 && chown clickagg:clickagg /var/lib/clickagg

USER 10001:10001
WORKDIR /var/lib/clickagg

# The worker's HTTP port (health, metrics, live page, query endpoint).
EXPOSE 6066

ENTRYPOINT ["clickagg"]
CMD ["worker"]
