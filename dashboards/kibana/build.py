"""Generate clickagg.ndjson, the Kibana 8.19 saved objects for the clickstream index.

Why a generator: Lens saved objects nest JSON in JSON (formula helper columns, panelsJSON), which is
easy to get subtly wrong by hand. This script is the source; the .ndjson next to it is its output,
committed so that `kibana-setup` (docker-compose.yml) can import it with curl alone.
tests/unit/test_kibana_objects.py checks that the committed file equals this script's output.

    python dashboards/kibana/build.py          # rewrite clickagg.ndjson
    python dashboards/kibana/build.py --check  # exit 1 if it is out of date

Objects (ids are stable, so re-importing with overwrite=true updates instead of duplicating):
a data view on exactly `clickstream-minutely` (not a wildcard: `clickstream-minutely-progress` exists
too) with time field `time`; three Lens visualizations; one dashboard referencing them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

INDEX = "clickstream-minutely"  # SPEC's default ES_INDEX; the data view's title must equal it
TIME_FIELD = "time"
DATA_VIEW_ID = "clickagg-clickstream-minutely"
DASHBOARD_ID = "clickagg-dashboard"
OUTPUT = Path(__file__).with_name("clickagg.ndjson")

# Migration versions of the shapes written below: Kibana 8.19 migrates anything older on import, and
# refuses anything newer than itself. Lens's last migration is 8.9.0 (`formBased` datasource).
CORE_MIGRATION_VERSION = "8.8.0"
LENS_VERSION = "8.9.0"
DASHBOARD_VERSION = "8.9.0"
DATA_VIEW_VERSION = "8.0.0"

CTR_FORMULA = "sum(click) / sum(impression)"
PERCENT = {"id": "percent", "params": {"decimals": 2}}


# --------------------------------------------------------------------------- Lens columns


def date_histogram(label: str = "Minute (UTC)") -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "date",
        "operationType": "date_histogram",
        "sourceField": TIME_FIELD,
        "isBucketed": True,
        "scale": "interval",
        "params": {"interval": "1m", "includeEmptyRows": True, "dropPartials": False},
    }


def sum_of(field: str, label: str) -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "sum",
        "sourceField": field,
        "isBucketed": False,
        "scale": "ratio",
        "params": {"emptyAsNull": True},
    }


def ctr_formula(column_id: str, label: str = "CTR") -> dict[str, dict[str, Any]]:
    """A Lens formula column plus the helper columns Lens stores for it (X0, X1 sums; X2 the math).

    Kibana saves a formula expanded like this; the expression runs the helpers, the formula column
    holds the text shown in the editor.
    """
    x0, x1, x2 = (f"{column_id}X{i}" for i in range(3))
    part = f"Part of {label}"
    helper = {"isBucketed": False, "scale": "ratio", "customLabel": True, "dataType": "number"}
    return {
        column_id: {
            "label": label,
            "customLabel": True,
            "dataType": "number",
            "operationType": "formula",
            "isBucketed": False,
            "scale": "ratio",
            "params": {"formula": CTR_FORMULA, "isFormulaBroken": False, "format": PERCENT},
            "references": [x2],
        },
        x0: {
            **helper,
            "label": part,
            "operationType": "sum",
            "sourceField": "click",
            "params": {"emptyAsNull": False},
        },
        x1: {
            **helper,
            "label": part,
            "operationType": "sum",
            "sourceField": "impression",
            "params": {"emptyAsNull": False},
        },
        x2: {
            **helper,
            "label": part,
            "operationType": "math",
            "params": {
                "tinymathAst": {
                    "type": "function",
                    "name": "divide",
                    "args": [x0, x1],
                    "location": {"min": 0, "max": len(CTR_FORMULA)},
                    "text": CTR_FORMULA,
                }
            },
            "references": [x0, x1],
        },
    }


def terms(field: str, label: str, size: int, **params: Any) -> dict[str, Any]:
    return {
        "label": label,
        "customLabel": True,
        "dataType": "number",
        "operationType": "terms",
        "sourceField": field,
        "isBucketed": True,
        "scale": "ordinal",
        "params": {
            "size": size,
            "otherBucket": False,
            "missingBucket": False,
            "parentFormat": {"id": "terms"},
            **params,
        },
    }


# --------------------------------------------------------------------------- saved objects


def lens(
    object_id: str,
    title: str,
    description: str,
    visualization_type: str,
    layer_id: str,
    columns: dict[str, dict[str, Any]],
    column_order: list[str],
    visualization: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": object_id,
        "type": "lens",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": LENS_VERSION,
        "managed": False,
        "attributes": {
            "title": title,
            "description": description,
            "visualizationType": visualization_type,
            "state": {
                "adHocDataViews": {},
                "internalReferences": [],
                "filters": [],
                "query": {"language": "kuery", "query": ""},
                "datasourceStates": {
                    "formBased": {
                        "layers": {
                            layer_id: {
                                "columns": columns,
                                "columnOrder": column_order,
                                "incompleteColumns": {},
                                "sampling": 1,
                            }
                        }
                    }
                },
                "visualization": visualization,
            },
        },
        "references": [
            {
                "type": "index-pattern",
                "id": DATA_VIEW_ID,
                "name": f"indexpattern-datasource-layer-{layer_id}",
            }
        ],
    }


def xy_visualization(layer: dict[str, Any], y_title: str, y_right_title: str | None = None) -> dict[str, Any]:
    axes = {"x": True, "yLeft": True, "yRight": True}
    return {
        "legend": {"isVisible": True, "position": "bottom", "showSingleSeries": True},
        "valueLabels": "hide",
        "fittingFunction": "None",
        "yTitle": y_title,
        **({"yRightTitle": y_right_title} if y_right_title else {}),
        "axisTitlesVisibilitySettings": axes,
        "tickLabelsVisibilitySettings": axes,
        "gridlinesVisibilitySettings": axes,
        "labelsOrientation": {"x": 0, "yLeft": 0, "yRight": 0},
        "yLeftExtent": {"mode": "full"},
        "yRightExtent": {"mode": "full"},
        "preferredSeriesType": layer["seriesType"],
        "layers": [{"layerType": "data", "position": "top", "showGridlines": False, **layer}],
    }


def data_view() -> dict[str, Any]:
    return {
        "id": DATA_VIEW_ID,
        "type": "index-pattern",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": DATA_VIEW_VERSION,
        "managed": False,
        "attributes": {
            "title": INDEX,
            "name": f"clickagg: {INDEX}",
            "timeFieldName": TIME_FIELD,
            "fields": "[]",
            "fieldAttrs": "{}",
            # Ids are identifiers, not quantities: no thousands separators ("12345", not "12,345").
            "fieldFormatMap": json.dumps(
                {
                    "ctr": {"id": "percent", "params": {"pattern": "0.00%"}},
                    "article_id": {"id": "number", "params": {"pattern": "0"}},
                    "segment_id": {"id": "number", "params": {"pattern": "0"}},
                },
                separators=(",", ":"),
            ),
            "runtimeFieldMap": "{}",
            "sourceFilters": "[]",
            "typeMeta": "{}",
        },
        "references": [],
    }


def traffic_per_minute() -> dict[str, Any]:
    layer = "clickagg-traffic-layer"
    columns = {
        "minute": date_histogram(),
        "impressions": sum_of("impression", "Impressions"),
        "clicks": sum_of("click", "Clicks"),
    }
    return lens(
        "clickagg-traffic-per-minute",
        "clickagg: impressions and clicks per minute",
        "Sum of impression and click per one-minute window (clicks on the right axis).",
        "lnsXY",
        layer,
        columns,
        ["minute", "impressions", "clicks"],
        xy_visualization(
            {
                "layerId": layer,
                "seriesType": "line",
                "xAccessor": "minute",
                "accessors": ["impressions", "clicks"],
                "yConfig": [
                    {"forAccessor": "impressions", "axisMode": "left"},
                    {"forAccessor": "clicks", "axisMode": "right"},
                ],
            },
            "Impressions",
            "Clicks",
        ),
    )


def ctr_by_segment() -> dict[str, Any]:
    layer = "clickagg-segment-layer"
    segment = terms(
        "segment_id",
        "Segment",
        10,
        # Rank segments by traffic, not by id: the busiest ten segments are the ones worth watching.
        orderBy={"type": "custom"},
        orderAgg=sum_of("impression", "Impressions"),
        orderDirection="desc",
        missingBucket=True,  # users missing from the reference data (segment_id null) count too
    )
    columns = {"minute": date_histogram(), "segment": segment, **ctr_formula("ctr")}
    return lens(
        "clickagg-ctr-by-segment",
        "clickagg: CTR by segment",
        f"{CTR_FORMULA} per segment_id and minute; the ten segments with the most impressions.",
        "lnsXY",
        layer,
        columns,
        ["segment", "minute", "ctr", "ctrX0", "ctrX1", "ctrX2"],
        xy_visualization(
            {
                "layerId": layer,
                "seriesType": "line",
                "xAccessor": "minute",
                "splitAccessor": "segment",
                "accessors": ["ctr"],
            },
            "CTR",
        ),
    )


def top_articles() -> dict[str, Any]:
    layer = "clickagg-articles-layer"
    columns = {
        "article": terms(
            "article_id",
            "Article",
            100,
            # Candidates are the 100 most-seen articles, so a CTR from a handful of impressions
            # cannot top the table; the table then sorts them by CTR.
            orderBy={"type": "column", "columnId": "impressions"},
            orderDirection="desc",
        ),
        "impressions": sum_of("impression", "Impressions"),
        "clicks": sum_of("click", "Clicks"),
        **ctr_formula("ctr"),
    }
    return lens(
        "clickagg-top-articles",
        "clickagg: top articles by CTR",
        "The 100 articles with the most impressions in the time range, sorted by CTR.",
        "lnsDatatable",
        layer,
        columns,
        ["article", "impressions", "clicks", "ctr", "ctrX0", "ctrX1", "ctrX2"],
        {
            "layerId": layer,
            "layerType": "data",
            "columns": [
                {"columnId": "article", "isTransposed": False},
                {"columnId": "impressions", "isTransposed": False},
                {"columnId": "clicks", "isTransposed": False},
                {"columnId": "ctr", "isTransposed": False},
            ],
            "sorting": {"columnId": "ctr", "direction": "desc"},
            "paging": {"size": 20, "enabled": True},
            "rowHeight": "single",
            "headerRowHeight": "single",
        },
    )


def dashboard(panels: list[tuple[dict[str, Any], dict[str, int]]]) -> dict[str, Any]:
    """Panels by reference: `<panelIndex>:panel_<panelIndex>` is how Kibana names panel references."""
    stored, references = [], []
    for number, (obj, grid) in enumerate(panels, start=1):
        index = str(number)
        stored.append(
            {
                "version": DASHBOARD_VERSION,
                "type": obj["type"],
                "gridData": {**grid, "i": index},
                "panelIndex": index,
                "embeddableConfig": {"enhancements": {}},
                "panelRefName": f"panel_{index}",
            }
        )
        references.append({"type": obj["type"], "id": obj["id"], "name": f"{index}:panel_{index}"})
    return {
        "id": DASHBOARD_ID,
        "type": "dashboard",
        "coreMigrationVersion": CORE_MIGRATION_VERSION,
        "typeMigrationVersion": DASHBOARD_VERSION,
        "managed": False,
        "attributes": {
            "title": "clickagg: clickstream (live)",
            "description": (
                f"Per-minute impressions, clicks and CTR from the `{INDEX}` index written by clickagg. "
                "Minutes still open (final: false) keep growing until their window closes."
            ),
            "version": 1,
            "timeRestore": True,
            "timeFrom": "now-30m",
            "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 10000},
            "optionsJSON": json.dumps(
                {
                    "useMargins": True,
                    "syncColors": False,
                    "syncCursor": True,
                    "syncTooltips": False,
                    "hidePanelTitles": False,
                },
                separators=(",", ":"),
            ),
            "panelsJSON": json.dumps(stored, separators=(",", ":")),
            "kibanaSavedObjectMeta": {
                "searchSourceJSON": json.dumps(
                    {"query": {"query": "", "language": "kuery"}, "filter": []},
                    separators=(",", ":"),
                )
            },
        },
        "references": references,
    }


def objects() -> list[dict[str, Any]]:
    traffic, segments, articles = traffic_per_minute(), ctr_by_segment(), top_articles()
    board = dashboard(
        [
            (traffic, {"x": 0, "y": 0, "w": 24, "h": 15}),
            (segments, {"x": 24, "y": 0, "w": 24, "h": 15}),
            (articles, {"x": 0, "y": 15, "w": 48, "h": 16}),
        ]
    )
    # Referenced objects first: the import API resolves references within the file either way.
    return [data_view(), traffic, segments, articles, board]


def render() -> str:
    return "".join(json.dumps(obj, sort_keys=True, separators=(",", ":")) + "\n" for obj in objects())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} saved objects to {OUTPUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
