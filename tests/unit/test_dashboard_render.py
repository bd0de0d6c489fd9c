"""The live page's renderer (app/dashboard_render.py): Snapshot in, HTML/SVG/JSON out, no stack needed;
and the pure parts of app/dashboard.py: the page's parameters and the sentence for a failing engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from clickagg.app import dashboard
from clickagg.app import dashboard_render as render
from clickagg.app.dashboard import load_assets
from clickagg.config import Settings
from clickagg.core.documents import iso
from clickagg.es.errors import Forbidden, SearchEngineError, Unreachable
from clickagg.query import DEFAULT_MIN_IMPRESSIONS, ArticleStat, MinuteTotals, SegmentSeries, WindowCounts

W = 60_000
T0 = int(datetime(2026, 1, 27, 12, 0, tzinfo=UTC).timestamp() * 1000)
ASSETS = render.Assets(css=":root{--bar:#000}", js="fetch('/dashboard/fragment')")


def minute(t: int, imp: int, clk: int, docs: int, finals: int, complete: bool) -> MinuteTotals:
    return MinuteTotals(
        time=iso(t),
        time_ms=t,
        impressions=imp,
        clicks=clk,
        ctr=clk / imp if imp else None,
        documents=docs,
        final_documents=finals,
        final=docs == finals,
        complete=complete,
    )


def snapshot(**fields: object) -> render.Snapshot:
    base: dict[str, object] = dict(
        index="i", generated_at="2026-01-27T12:03:04.000Z", window_ms=W, minutes_requested=30, min_impressions=20
    )  # fmt: skip
    return render.Snapshot(**{**base, **fields})  # type: ignore[arg-type]


def live() -> render.Snapshot:
    """Four minutes: complete, complete without events, final but not confirmed, the newest still open."""
    minutes = (
        minute(T0, 200, 10, 3, 3, True),
        minute(T0 + W, 0, 0, 0, 0, True),
        minute(T0 + 2 * W, 30, 3, 1, 1, False),
        minute(T0 + 3 * W, 50, 1, 2, 1, False),
    )
    windows = tuple(WindowCounts(m.time, m.time_ms, m.impressions, m.clicks, m.ctr) for m in minutes)
    segments = (
        SegmentSeries(3, 280, 14, 14 / 280, windows),
        SegmentSeries(None, 0, 0, None, tuple(WindowCounts(m.time, m.time_ms, 0, 0, None) for m in minutes)),
    )
    return snapshot(minutes=minutes, segments=segments, articles=(ArticleStat(7, 40, 4, 0.1),))


def test_page_without_data_inlines_assets_and_escapes_names() -> None:
    page = render.render_page(snapshot(index="<x>"), "/dashboard/fragment?minutes=5&top=3", ASSETS, 5)
    assert "holds no documents yet" in page and "<x>" not in page and "&lt;x&gt;" in page
    assert "<style>:root{--bar:#000}</style>" in page and "<script>fetch(" in page
    assert 'data-fragment-url="/dashboard/fragment?minutes=5&amp;top=3"' in page
    assert 'data-refresh-ms="5000"' in page and 'content="5"' in page
    assert "rendered 12:03:04 UTC" in page


def test_the_real_assets_are_the_static_files() -> None:
    page = render.render_page(snapshot(), "/dashboard/fragment", load_assets(), 5)
    assert "--bar:" in page, "the stylesheet is inlined from app/static"
    assert "<script>" in page and "fetch(" in page, "the refresh script is inlined from app/static"


def test_error_is_shown_escaped_and_carried_in_json() -> None:
    failed = snapshot(error="The search engine at http://es:9200 cannot be reached (boom <b>)")
    assert render.render_fragment(failed) == (
        '<p class="notice error" role="alert">The search engine at http://es:9200 cannot be reached '
        "(boom &lt;b&gt;). Nothing to show until it answers; this page tries again by itself every few "
        "seconds.</p>"
    )
    assert failed.as_json()["error"].endswith("(boom <b>)") and failed.as_json()["minutes"] == []
    page = render.render_page(failed, "/dashboard/fragment", ASSETS, 5)
    assert '<span id="status" class="stale">search engine failed · retrying every 5 s</span>' in page
    assert 'data-refresh-ms="5000"' in page, "the script keeps trying while the engine is down"
    assert "Traceback" not in page


def test_nice_ceiling_gives_round_axis_maxima() -> None:
    assert [render.nice_ceiling(v) for v in (0, 0.7, 1, 3, 7, 12, 260, 1001)] == [
        1.0, 1.0, 1.0, 5.0, 10.0, 20.0, 500.0, 2000.0,
    ]  # fmt: skip
    assert render.nice_ceiling(2.2) == 2.5


def test_json_keeps_the_page_field_names_with_derived_values() -> None:
    data = live().as_json()
    assert (data["impression"], data["click"], data["ctr"]) == (280, 14, 14 / 280)
    assert (data["open_minutes"], data["incomplete_minutes"]) == (1, 2)
    assert (data["since_ms"], data["until_ms"]) == (T0, T0 + 3 * W)
    assert data["minutes"][0] == {
        "time": "2026-01-27T12:00:00.000Z", "epoch_ms": T0, "impression": 200, "click": 10, "ctr": 0.05,
        "documents": 3, "open_documents": 0, "final": True, "complete": True,
    }  # fmt: skip
    assert data["minutes"][1]["final"] is False and data["minutes"][1]["complete"] is True  # no documents
    assert data["minutes"][2]["final"] is True and data["minutes"][2]["complete"] is False
    assert data["minutes"][3]["open_documents"] == 1 and data["minutes"][3]["final"] is False
    assert [s["segment"] for s in data["segments"]] == ["3", render.UNKNOWN_SEGMENT]
    assert data["segments"][0]["points"][0] == {"epoch_ms": T0, "impression": 200, "click": 10, "ctr": 0.05}
    assert data["articles"] == [{"article_id": 7, "impression": 40, "click": 4, "ctr": 0.1}]


def test_minutes_show_their_state_and_the_open_one_is_not_a_dip() -> None:
    fragment = render.render_fragment(live())
    row = r'<tr data-time="([^"]+)"[^>]*data-complete="(\w+)" data-state="(\w+)">'
    assert re.findall(row, fragment) == [  # newest first
        ("2026-01-27T12:03:00.000Z", "false", "open"),
        ("2026-01-27T12:02:00.000Z", "false", "final"),
        ("2026-01-27T12:01:00.000Z", "true", "empty"),
        ("2026-01-27T12:00:00.000Z", "true", "complete"),
    ]
    tags = re.findall(r'<span class="tag (\w+)"[^>]*>([^<]+)</span>', fragment)
    assert tags == [("open", "open"), ("final", "final"), ("empty", "no data"), ("final", "complete")]
    assert 'data-time="2026-01-27T12:00:00.000Z" data-impression="200" data-click="10"' in fragment
    assert re.findall(r'<rect class="([^"]+)"', fragment) == ["bar", "bar", "bar", "bar open"]
    assert fragment.count("(open: still counting)") == 1
    lines = re.findall(r'<polyline class="clicks"([^>]*)points="([^"]+)"', fragment)
    assert [(dash.strip(), len(points.split())) for dash, points in lines] == [
        ("", 3),  # 12:00 -> 12:02, none open: solid
        ('stroke-dasharray="5 4"', 2),  # 12:02 -> 12:03 (open): dashed
    ]
    assert 'id="complete-minutes">2 / 4<' in fragment
    assert "1 open minute, still counting" in fragment
    assert "can still change: 2 of its minutes are not complete yet" in fragment
    assert 'data-segment="3"' in fragment and f'data-segment="{render.UNKNOWN_SEGMENT}"' in fragment
    assert 'data-article="7" data-impression="40" data-click="4"' in fragment


def test_all_complete_says_nothing_is_open() -> None:
    s = snapshot(minutes=(minute(T0, 5, 1, 1, 1, True), minute(T0 + W, 7, 2, 1, 1, True)))
    fragment = render.render_fragment(s)
    assert "still counting" not in fragment and "can still change" not in fragment
    assert "stroke-dasharray" not in fragment and "bar open" not in fragment
    assert "No article has 20+ impressions in this window yet." in fragment


def test_line_runs_split_at_open_minutes() -> None:
    assert render.line_runs([]) == [] and render.line_runs([True]) == []
    assert render.line_runs([True, True, True]) == [(True, 0, 2)]
    assert render.line_runs([True, True, False]) == [(True, 0, 1), (False, 1, 2)]
    assert render.line_runs([False, False, True, True]) == [(False, 0, 2), (True, 2, 3)]
    assert render.line_runs([True, False, True]) == [(False, 0, 2)]


def test_segment_chart_breaks_lines_where_a_minute_has_no_impressions() -> None:
    windows = (
        WindowCounts(iso(T0), T0, 10, 1, 0.1),
        WindowCounts(iso(T0 + W), T0 + W, 0, 0, None),
        WindowCounts(iso(T0 + 2 * W), T0 + 2 * W, 10, 2, 0.2),
        WindowCounts(iso(T0 + 3 * W), T0 + 3 * W, 10, 3, 0.3),
    )
    chart = render.segment_chart([SegmentSeries(1, 30, 6, 0.2, windows)])
    assert chart.count("<circle") == 1 and chart.count('<polyline class="series"') == 1
    assert "segment 1 <b>20.00%</b> <small>6 / 30</small>" in chart


def test_open_minute_is_labelled_and_dashed_in_the_segment_chart_too() -> None:
    s = live()
    fragment = render.render_fragment(s)
    assert fragment.count('class="open-label"') == 1 and ">open</text>" in fragment
    # segment 3 has CTR in minutes 0, 2, 3 (1 has no impressions): a dot, then 2 -> 3 dashed (3 is open)
    series = re.findall(r'<polyline class="series" stroke="[^"]+"([^>]*)points="([^"]+)"', fragment)
    assert [(dash.strip(), len(points.split())) for dash, points in series] == [('stroke-dasharray="5 4"', 2)]
    assert render.segment_chart(s.segments).count("stroke-dasharray") == 0, "no open flags: all solid"


def test_controls_show_the_values_in_use_and_the_filters_in_the_ranking_hint() -> None:
    controls = render.Controls(minutes=60, top=5, min_impressions=50, gender="female", segment="3")
    s = render.Snapshot(**{**live().__dict__, "controls": controls})
    page = render.render_page(s, "/dashboard/fragment?minutes=60", ASSETS, 5)
    values = dict(re.findall(r'<input id="ctl-\w+" name="(\w+)"[^>]*value="([^"]*)"', page))
    assert values == {
        "minutes": "60",
        "top": "5",
        "min_impressions": "50",
        "gender": "female",
        "segment": "3",
    }
    assert f'max="{render.MAX_MINUTES}"' in page and f'max="{render.MAX_TOP}"' in page
    assert '<form id="controls" method="get" action=""' in page and "aria-invalid" not in page
    assert "in the window; gender female, segment 3" in page
    assert '<a href="/dashboard/data.json?minutes=60">' in page
    assert s.as_json()["query"] == {
        "minutes": 60, "top": 5, "min_impressions": 50, "gender": "female", "segment": "3", "view": "minute",
    }  # fmt: skip
    assert '<option value="minute" selected>last minutes</option>' in page


def test_refused_parameters_keep_what_was_typed_and_stop_the_refresh() -> None:
    typed = {"minutes": "0", "top": "", "min_impressions": "", "gender": '"><script>', "segment": ""}
    s = snapshot(
        controls=render.Controls.refused(typed, "minutes"), bad_request="minutes must be in 1..1440, got 0"
    )
    page = render.render_page(s, "/dashboard/fragment?minutes=0", ASSETS, 5)
    assert re.search(r'<input id="ctl-minutes" name="minutes"[^>]*value="0"[^>]*aria-invalid="true"', page)
    assert "<script>" not in page.replace("<script>fetch(", ""), "typed text is escaped"
    assert "&quot;&gt;&lt;script&gt;" in page
    assert "This page cannot show that: minutes must be in 1..1440, got 0." in page
    assert 'data-refresh-ms="0"' in page and 'http-equiv="refresh"' not in page
    data = s.as_json()
    assert (data["error"], data["query"], data["minutes"]) == ("minutes must be in 1..1440, got 0", None, [])


# --------------------------------------------------------------------------- app/dashboard.py, pure parts


def test_parameters_default_and_parse() -> None:
    assert dashboard.parse_controls({}) == render.Controls(
        minutes=30, top=10, min_impressions=DEFAULT_MIN_IMPRESSIONS, gender="", segment=""
    )
    got = dashboard.parse_controls(
        {"minutes": "90", "top": "3", "min_impressions": "0", "gender": " male ", "segment": "null"}
    )
    assert got == render.Controls(minutes=90, top=3, min_impressions=0, gender="male", segment="null")
    assert dashboard.parse_controls({"minutes": " ", "top": ""}).minutes == 30  # an empty field: default


@pytest.mark.parametrize(
    ("query", "name", "message"),
    [
        ({"minutes": "0"}, "minutes", "minutes must be in 1..1440, got 0"),
        ({"minutes": "1441"}, "minutes", "minutes must be in 1..1440, got 1441"),
        ({"minutes": "ten"}, "minutes", "minutes must be a whole number, got 'ten'"),
        ({"top": "101"}, "top", "top must be in 1..100, got 101"),
        (
            {"min_impressions": "-1"},
            "min_impressions",
            "min_impressions must be in 0..4611686018427387904, got -1",
        ),
        ({"segment": "x"}, "segment", "segment must be an integer or 'null', got 'x'"),
        (
            {"n": "5"},
            None,
            "unknown parameter(s) n; the page takes gender, min_impressions, minutes, segment, top, view",
        ),
        ({"view": "day"}, "view", "view must be minute or hour, got 'day'"),
        ({"view": "Hour"}, "view", "view must be minute or hour, got 'Hour'"),
    ],
)
def test_bad_parameters_name_the_control(query: dict[str, str], name: str | None, message: str) -> None:
    with pytest.raises(dashboard.BadParameter) as refused:
        dashboard.parse_controls(query)
    assert (str(refused.value), refused.value.name) == (message, name)


# as the adapters (clickagg/es/dialect_*.py) word them
REFUSED = Unreachable(
    "ConnectionError: Connection error caused by: ClientConnectorError(Cannot connect to host 127.0.0.1:9 "
    "ssl:default [Connect call failed ('127.0.0.1', 9)])"
)


@pytest.mark.parametrize(
    ("exc", "sentence"),
    [
        (REFUSED, "The search engine at https://es.example:9243 cannot be reached (connection refused); "
         "the worker keeps what it counts in Kafka until it answers, so no count is lost"),
        (Unreachable("ConnectionTimeout: Connection timed out"), "cannot be reached (no answer in time)"),
        (Unreachable("ConnectionError: [Errno -2] Name or service not known"), "(host name not found)"),
        (Unreachable("TlsError: TLS error caused by: SSLError([SSL: CERTIFICATE_VERIFY_FAILED])"),
         "(TLS certificate not accepted) (check ELASTICSEARCH_CA_CERTS / ELASTICSEARCH_SSL_FINGERPRINT)"),
        (Unreachable("SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number"), "(TLS handshake failed)"),
        (Forbidden("401 security_exception: missing authentication credentials", 401),
         "refused the credentials (HTTP 401): check ELASTICSEARCH_API_KEY or ELASTICSEARCH_USERNAME / "
         "ELASTICSEARCH_PASSWORD"),
        (SearchEngineError("500 x: shard\nfailure", 500, "all shards\nfailed"),
         "failed the query (HTTP 500: all shards failed)"),
    ],
)  # fmt: skip
def test_engine_failure_is_one_sentence_without_secrets_or_internals(exc: Exception, sentence: str) -> None:
    settings = Settings(elasticsearch_url="https://elastic:s3cret@es.example:9243/")
    said = dashboard.engine_failure(exc, settings)
    assert sentence in said and said.startswith("The search engine at https://es.example:9243 ")
    assert "s3cret" not in said and "elastic:" not in said and "ClientConnectorError" not in said
    assert "\n" not in said and isinstance(exc, dashboard.SEARCH_ENGINE_ERRORS)


def test_engine_failure_names_a_cloud_deployment_not_its_id() -> None:
    settings = Settings(elastic_cloud_id="prod:ZXMuZXhhbXBsZSRhYmMkZGVm")
    said = dashboard.engine_failure(REFUSED, settings)
    assert said.startswith("The search engine at the Elastic Cloud deployment (ELASTIC_CLOUD_ID) cannot be")
    assert "ZXMu" not in said


H = 3_600_000


def hourly() -> render.Snapshot:
    """The hourly view: 7 days of hours (2026-01-20 13:00 .. 2026-01-27 12:00), the newest one open."""
    start = T0 - 167 * H
    hours = tuple(
        MinuteTotals(iso(t), t, 1000 + i, 10 + i % 7, (10 + i % 7) / (1000 + i), 4, 4 if i < 167 else 1,
                     i < 167, i < 167, "hour")
        for i, t in enumerate(range(start, T0 + H, H))
    )  # fmt: skip
    windows = tuple(WindowCounts(h.time, h.time_ms, h.impressions, h.clicks, h.ctr) for h in hours)
    segments = (
        SegmentSeries(1, sum(h.impressions for h in hours), sum(h.clicks for h in hours), 0.01, windows),
    )
    return snapshot(
        minutes=hours,
        segments=segments,
        articles=(ArticleStat(7, 40, 4, 0.1),),
        window_ms=H,
        minutes_requested=168,
        resolution="hour",
        index="i-hourly",
        controls=render.Controls(view="hour"),
    )


def test_hourly_view_speaks_of_hours_and_marks_days_on_the_axis() -> None:
    s = hourly()
    assert len(s.minutes) == 168 and s.unit == "hour"
    fragment = render.render_fragment(s)
    assert "Last 168 hours (7 days) of the hourly rollups in <code>i-hourly</code>" in fragment
    assert "Impressions and clicks per hour" in fragment and "per segment and hour" in fragment
    assert "1 open hour, still counting" in fragment and "complete hours" in fragment
    assert "<th>hour (UTC)</th>" in fragment and ">01-27 12:00<" in fragment  # the newest hour, dated
    assert 'data-resolution="hour"' in fragment
    traffic = render.traffic_chart(s.minutes)
    labels = re.findall(r'<text x="[^"]+" y="[^"]+" text-anchor="middle">([^<]+)</text>', traffic)
    # each UTC midnight in the range (01-21 .. 01-27; 01-27 00:00 is 12 h before the newest hour), the newest hour
    assert labels == [f"01-{d}" for d in range(21, 28)] + ["12:00"]
    assert "minute" not in re.sub(r'id="[^"]*"', "", fragment)  # no minute wording (ids stay as they are)
    assert traffic.count('class="bar open"') == 1
    data = s.as_json()
    assert (data["resolution"], data["window_ms"], len(data["minutes"])) == ("hour", H, 168)
    assert data["impression"] == sum(h.impressions for h in s.minutes)
    assert data["query"]["view"] == "hour"
    page = render.render_page(s, "/dashboard/fragment?view=hour", ASSETS, 5)
    assert '<option value="hour" selected>last 7 days, hourly</option>' in page


def test_minute_view_keeps_its_words() -> None:
    fragment = render.render_fragment(live())
    assert "Last 4 minutes of data in <code>i</code>" in fragment and "complete minutes" in fragment
    assert "<th>minute (UTC)</th>" in fragment and 'data-resolution="minute"' in fragment


def test_hourly_view_parameter() -> None:
    assert dashboard.parse_controls({"view": "hour"}).view == "hour"
    assert dashboard.parse_controls({"view": ""}).view == dashboard.parse_controls({}).view == "minute"
    with pytest.raises(dashboard.BadParameter) as refused:
        dashboard.parse_controls({"view": "hour"}, hourly=False)
    assert refused.value.name == "view" and "HOURLY_INDEX is empty" in str(refused.value)
    assert dashboard.parse_controls({"view": "minute"}, hourly=False).view == "minute"


def test_adjacent_open_hours_are_labelled_once() -> None:
    s = hourly()
    hours = list(s.minutes)
    for i in (165, 166):  # three open hours side by side: one label, over the newest
        hours[i] = MinuteTotals(
            **{**hours[i].__dict__, "final": False, "complete": False, "final_documents": 1}
        )
    chart = render.traffic_chart(hours)
    assert chart.count('class="bar open"') == 3 and chart.count('class="open-label"') == 1
