"""What each setting means (flag help, README table) and which settings each command reads.

Why a table of its own: `--help` of every command, `clickagg config show` and the README's settings
table must say the same thing, and a command must list only the flags it uses (a `--web-port` on
`query` suggests it matters there). tests/unit/test_settings_doc.py holds all three to this file.
"""

from __future__ import annotations

HELP: dict[str, str] = {
    "kafka_bootstrap_servers": "Kafka brokers, host:port[,host:port...]",
    "events_topic": "input topic; dead letters go to <EVENTS_TOPIC>-dlq unless DLQ_TOPIC is set",
    "elasticsearch_url": "Elasticsearch or OpenSearch URL",
    "es_index": "output index (read alias over daily indices; template installed at start)",
    "reference_data": "path or s3://bucket/key of the user_id,gender,segment_id CSV (empty: every user joins to null)",
    "window_seconds": "tumbling window size in seconds, aligned to the epoch (UTC minutes)",
    "allowed_lateness_seconds": "how long after its end a window still accepts events",
    "idle_timeout_seconds": "a caught-up partition quiet this long advances its watermark on wall time",
    "app_id": "deployment name: consumer groups, transactional ids and internal topics carry it",
    "data_dir": "local state of the worker",
    "web_port": "the worker's HTTP port (probes, /metrics, /api, /dashboard)",
    "event_time_field": "take event time from this event field (epoch ms or ISO-8601) instead of the record timestamp",
    "dlq_topic": "dead-letter topic (default <EVENTS_TOPIC>-dlq)",
    "partials_partitions": "partitions of the internal partials topic when the worker creates it (0: as many as the events topic)",
    "reference_reload_seconds": "how often the reference file's mtime or the S3 ETag is checked",
    "reference_max_bad_ratio": "a reference file with a larger fraction (0..1) of malformed rows is refused",
    "flush_interval_seconds": "how often stage 2 upserts the changed documents of live windows",
    "max_future_seconds": "an event more than this ahead of the worker's clock is a dead letter, reason future",
    "hourly_index": "alias of the exact hourly rollups (auto: ES_INDEX with -minutely replaced by -hourly, e.g. clickstream-hourly; empty: no rollups)",
    "hourly_retention_days": "daily indices of hourly rollups older than this many days are deleted (0: keep everything); events past either retention are expired",
    "retention_days": "daily indices older than this many days are deleted and their events dead-lettered as expired (0: keep everything)",
    "log_level": "DEBUG, INFO, WARNING or ERROR; DEBUG adds tracebacks and every client-library line",
    "log_format": "text, or json (one ECS document per line, for log shippers)",
    "stage1_max_records": "tuning: records per stage-1 batch",
    "stage1_fetch_bytes": "tuning: stage-1 fetch size per partition and request, bytes",
    "stage2_max_records": "tuning: records per stage-2 batch",
    "stage2_fetch_bytes": "tuning: stage-2 fetch size per partition and request, bytes",
    "producer_linger_ms": "tuning: how long the stage-1 producer waits to fill a batch, ms",
    "max_pending_finals": "tuning: stage 2 flushes early when this many final documents wait",
    "kafka_security_protocol": "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    "kafka_sasl_mechanism": "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER or AWS_MSK_IAM",
    "kafka_sasl_username": "SASL user (PLAIN, SCRAM)",
    "kafka_sasl_password": "SASL password (PLAIN, SCRAM) or OAUTHBEARER token; secret, also as a _FILE",
    "kafka_ssl_ca_location": "CA file to verify the brokers (default: the system's CAs)",
    "kafka_ssl_certificate_location": "client certificate file (mTLS)",
    "kafka_ssl_key_location": "client key file (mTLS)",
    "kafka_ssl_key_password": "password of the client key; secret, also as a _FILE",
    "kafka_ssl_endpoint_identification": "https (the broker's name must match its certificate) or none",
    "elasticsearch_api_key": "API key, id:key or encoded; secret, also as a _FILE",
    "elasticsearch_username": "basic-auth user",
    "elasticsearch_password": "basic-auth password; secret, also as a _FILE",
    "elasticsearch_ca_certs": "CA file to verify the search engine",
    "elasticsearch_ssl_fingerprint": "the server certificate's SHA-256 fingerprint, instead of a CA",
    "elasticsearch_verify_certs": "true; false only for a throw-away test cluster",
    "elastic_cloud_id": "Elastic Cloud deployment id, instead of ELASTICSEARCH_URL",
    "aws_region": "AWS region, for AWS_MSK_IAM and OPENSEARCH_AWS_SIGV4",
    "search_engine": "auto (ask the node), elasticsearch or opensearch",
    "opensearch_aws_sigv4": "sign requests for Amazon OpenSearch Service (es) or Serverless (aoss)",
    "web_bind": "address of the worker's HTTP server (0.0.0.0 to listen on all interfaces)",
    "web_auth_token": "when set, /api/* and /dashboard need Authorization: Bearer <token>; secret, also as a _FILE",
}

KAFKA = (
    "kafka_bootstrap_servers",
    "kafka_security_protocol",
    "kafka_sasl_mechanism",
    "kafka_sasl_username",
    "kafka_sasl_password",
    "kafka_ssl_ca_location",
    "kafka_ssl_certificate_location",
    "kafka_ssl_key_location",
    "kafka_ssl_key_password",
    "kafka_ssl_endpoint_identification",
    "aws_region",
)
SEARCH = (
    "elasticsearch_url",
    "elasticsearch_api_key",
    "elasticsearch_username",
    "elasticsearch_password",
    "elasticsearch_ca_certs",
    "elasticsearch_ssl_fingerprint",
    "elasticsearch_verify_certs",
    "elastic_cloud_id",
    "aws_region",
    "search_engine",
    "opensearch_aws_sigv4",
)
LOGS = ("log_level", "log_format")

# The settings each command reads; None: all of them (the worker, and `config show`).
FOR_COMMAND: dict[str, tuple[str, ...] | None] = {
    "worker": None,
    "config": None,
    "produce": (*KAFKA, "events_topic", *LOGS),
    "query": (*SEARCH, "es_index", "hourly_index", *LOGS),
    "bench": ("kafka_bootstrap_servers", "elasticsearch_url", "window_seconds", *LOGS),
}
