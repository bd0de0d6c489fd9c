#!/usr/bin/env bash
# The whole test suite: brings the real local stack up, runs unit + integration tests, brings it down.
source "$(dirname "$0")/_env.sh"
clickagg stack up --secure  # also the SASL_SSL listener and the TLS front (tests/integration/test_secure_*.py)
clickagg stack up opensearch  # the second search engine: tests parametrized over both engines
trap 'clickagg stack down; clickagg stack down opensearch' EXIT
ruff check .
mypy
lint-imports  # the layer contract in pyproject.toml (README "Layout")
python -m pytest -v -p no:cacheprovider "$@"
