"""`clickagg query` argument handling and rendering (the Elasticsearch side is in integration tests)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from clickagg import cli, query_cli
from clickagg.query import ArticleStat, Completeness, MinuteTotals, PartitionProgress, hour_completeness

UNREACHABLE = "http://127.0.0.1:9"  # nothing listens: any request would fail with exit 1, not 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["query", "latest", "--k", "3"], "--k do(es) not apply to 'query latest'"),
        (["query", "range", "--from", "2026-01-27T10:00:00Z"], "range needs --from and --to"),
        (
            ["query", "range", "--from", "noon", "--to", "1"],
            "not an ISO 8601 time or epoch milliseconds: 'noon'",
        ),
        (["query", "top", "--from", "1"], "--from do(es) not apply to 'query top'"),
        (["query", "top", "--segment", "x"], "segment must be an integer or 'null'"),
        (["query", "top", "--by-segment", "--segment", "1"], "--segment (with --by-segment)"),
        (["query", "completeness", "--minutes", "3"], "--minutes do(es) not apply"),
        (["query", "latest", "--minutes", "0"], "--minutes must be in 1..10080, got 0"),
        (
            ["query", "top", "--min-impressions", "-1"],
            "--min-impressions must be in 0..4611686018427387904, got -1",
        ),
        (
            ["query", "latest", "--min-impressions", "20"],
            "--min-impressions do(es) not apply to 'query latest'",
        ),
        (["query", "latest", "--resolution", "hour"], "--resolution do(es) not apply to 'query latest'"),
        (["query", "completeness", "--resolution", "auto"], "is minute or hour, got auto"),
        (["query", "top", "--resolution", "hour"], "--minutes must be a multiple of 60, got 5"),
        (["query", "top", "--resolution", "hour", "--minutes", "90"], "a multiple of 60, got 90"),
        (["query", "top", "--minutes", "10081"], "--minutes must be in 1..10080, got 10081"),
        (["query", "top", "--resolution", "auto", "--minutes", "604801"], "in 1..604800, got 604801"),
        (
            ["query", "top", "--resolution", "hour", "--minutes", "60", "--hourly-index", ""],
            "resolution hour needs the hourly rollups, which are off (HOURLY_INDEX is empty)",
        ),
        (
            ["query", "range", "--resolution", "hour", "--from", "0", "--to", "1", "--hourly-index", ""],
            "HOURLY_INDEX is empty",
        ),
    ],
)
def test_bad_requests_exit_2_with_a_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*argv, "--elasticsearch-url", UNREACHABLE]) == 2
    err = capsys.readouterr().err
    assert message in err, err


def test_resolution_is_one_of_three(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["query", "range", "--resolution", "day", "--elasticsearch-url", UNREACHABLE])
    assert exit_.value.code == 2
    assert "invalid choice: 'day' (choose from minute, hour, auto)" in capsys.readouterr().err.replace(
        "'minute', 'hour', 'auto'", "minute, hour, auto"
    )


def test_unreachable_elasticsearch_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["query", "completeness", "--elasticsearch-url", UNREACHABLE]) == 1
    assert capsys.readouterr().err == (
        f"clickagg query: error: the search engine at {UNREACHABLE} does not answer (connection refused): "
        "check ELASTICSEARCH_URL and that it runs\n"
    )


def test_parser_keeps_config_flags_and_defaults() -> None:
    args = cli.build_parser().parse_args(
        ["query", "--es-index", "idx", "top", "--k", "3", "--segment", "null"]
    )
    assert (args.what, args.es_index, args.k, args.segment, args.minutes) == ("top", "idx", 3, "null", 5)
    assert cli.build_parser().parse_args(["query"]).what == "latest"


def test_tables_render_values() -> None:
    rows = [
        MinuteTotals("2026-01-27T10:00:00.000Z", 1, 200, 7, 0.035, 12, 12, True, True),
        MinuteTotals("2026-01-27T10:01:00.000Z", 2, 0, 0, None, 0, 0, True, False),
    ]
    lines = query_cli.minutes_table(rows).splitlines()
    assert lines[1].split() == ["2026-01-27T10:00:00.000Z", "200", "7", "0.0350", "12", "yes", "yes"]
    assert lines[2].split() == ["2026-01-27T10:01:00.000Z", "0", "0", "-", "0", "yes", "no"]
    table = query_cli.articles_table((ArticleStat(42, 10, 4, 0.4), ArticleStat(9, 3, 1, 1 / 3)))
    assert [line.split() for line in table.splitlines()[1:]] == [
        ["1", "42", "10", "4", "0.4000"],
        ["2", "9", "3", "1", "0.3333"],
    ]
    comp = Completeness(
        120_000, 60_000, 10_000, 2, (PartitionProgress(0, 2, 190_000, 60_000, 10_000, None),), (1,)
    )
    text = query_cli.completeness_text(comp)
    assert "complete before 1970-01-01T00:02:00.000Z (last complete minute 1970-01-01T00:01:00.000Z)" in text
    assert "partitions 2 (missing: 1)" in text
    hours = query_cli.completeness_text(
        hour_completeness(replace(comp, complete_before_ms=7 * 3_600_000 + 120_000))
    )
    assert "complete before 1970-01-01T07:00:00.000Z (last complete hour 1970-01-01T06:00:00.000Z)" in hours
    hour_rows = [MinuteTotals("1970-01-01T06:00:00.000Z", 6 * 3_600_000, 5, 1, 0.2, 3, 3, True, True, "hour")]
    assert query_cli.minutes_table(hour_rows).splitlines()[0].startswith("hour (UTC)")
