"""Static checks of the Kibana saved objects (dashboards/kibana/clickagg.ndjson) and their import.

No Kibana is needed. The file is parsed and cross-checked against itself (ids, references, Lens
columns, dashboard panels), against the index mapping (clickagg.es.schema.MAPPINGS: every field a
visualization uses exists with a type that operation can aggregate) and against SPEC's defaults
(the data view is exactly the default index with time field `time`). The `kibana-setup` compose
service is checked statically and then its script is run with curl against a stub Kibana.

Each validator is also run on a broken copy, so these tests are shown to fail when the file is wrong.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from aiohttp import BodyPartReader, web
from packaging.version import Version

from clickagg.config import Settings
from clickagg.es.schema import MAPPINGS

ROOT = Path(__file__).resolve().parents[2]
KIBANA_DIR = ROOT / "dashboards" / "kibana"
NDJSON = KIBANA_DIR / "clickagg.ndjson"
COMPOSE_FILE = ROOT / "docker-compose.yml"
IMPORT_PATH = "/api/saved_objects/_import"

FIELDS: dict[str, str] = {name: spec["type"] for name, spec in MAPPINGS["properties"].items()}
NUMERIC = {
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
}
# Which mapping types each Lens operation can aggregate.
OPERATION_TYPES: dict[str, set[str]] = {
    **{op: NUMERIC for op in ("sum", "average", "min", "max", "median", "standard_deviation", "percentile")},
    "date_histogram": {"date", "date_nanos"},
    "terms": NUMERIC | {"keyword", "boolean", "ip"},
    "unique_count": NUMERIC | {"keyword", "boolean", "ip", "date"},
    "last_value": NUMERIC | {"keyword", "boolean", "ip", "date"},
    "count": NUMERIC | {"keyword", "boolean", "ip", "date"},
}
RECORDS = "___records___"  # Lens's pseudo-field for count()
FORMULA_CALL = re.compile(r"\b([a-z_]+)\(\s*([A-Za-z_][\w.]*)?")
SPEC_CTR = "sum(click)/sum(impression)"


# --------------------------------------------------------------------------- loading


def parse_ndjson(text: str) -> list[dict[str, Any]]:
    objects = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"line {number} is not JSON: {exc}") from None
        assert isinstance(obj, dict), f"line {number} is not a JSON object"
        for key, kind in (("id", str), ("type", str), ("attributes", dict), ("references", list)):
            assert isinstance(obj.get(key), kind), f"line {number}: {key!r} missing or not a {kind.__name__}"
        objects.append(obj)
    assert objects, "no saved objects"
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return parse_ndjson(NDJSON.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose_services() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        services = yaml.safe_load(f)["services"]
    assert isinstance(services, dict)
    return services


def of_type(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["type"] == kind]


def lens_layers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    states = obj["attributes"]["state"]["datasourceStates"]
    assert set(states) <= {"formBased", "textBased"}, f"{obj['id']}: unexpected datasources {set(states)}"
    layers = states.get("formBased", {}).get("layers", {})
    assert layers, f"{obj['id']}: no formBased layers"
    return layers


def formula_fields(formula: str) -> list[tuple[str, str]]:
    """(function, field) for each call with a field argument, e.g. sum(click) -> ("sum", "click")."""
    return [(fn, field) for fn, field in FORMULA_CALL.findall(formula) if field]


# --------------------------------------------------------------------------- validators


def check_unique_ids(objs: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in objs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate saved object ids: {duplicates}"


def check_references(objs: list[dict[str, Any]]) -> None:
    present = {(o["type"], o["id"]) for o in objs}
    for obj in objs:
        names = [r.get("name") for r in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']}: duplicate reference names"
        for ref in obj["references"]:
            assert {"type", "id", "name"} <= ref.keys(), f"{obj['id']}: malformed reference {ref}"
            assert (ref["type"], ref["id"]) in present, (
                f"{obj['id']} references {ref['type']} {ref['id']!r}, which is not in the file"
            )


def check_data_view(objs: list[dict[str, Any]]) -> dict[str, Any]:
    views = of_type(objs, "index-pattern")
    assert len(views) == 1, f"expected exactly one data view, found {len(views)}"
    attrs = views[0]["attributes"]
    default_index = Settings().es_index
    assert default_index == "clickstream-minutely", "SPEC's default ES_INDEX"
    # Exactly the index: a wildcard or a list would also match `<index>-progress`.
    assert attrs["title"] == default_index, f"data view title {attrs['title']!r} != {default_index!r}"
    assert attrs.get("timeFieldName") == "time", f"time field is {attrs.get('timeFieldName')!r}, not 'time'"
    assert FIELDS["time"] == "date"
    for field in json.loads(attrs.get("fieldFormatMap") or "{}"):
        assert field in FIELDS, f"data view formats unknown field {field!r}"
    return views[0]


def check_field(owner: str, operation: str, field: str | None) -> None:
    if operation in {"formula", "math", "static_value"}:
        return
    assert operation in OPERATION_TYPES, f"{owner}: operation {operation!r} is not checked by this test"
    if operation == "count" and field in (None, RECORDS):
        return
    assert field in FIELDS, f"{owner}: field {field!r} is not in the index mapping"
    assert FIELDS[field] in OPERATION_TYPES[operation], (
        f"{owner}: {operation} cannot aggregate {field!r} of type {FIELDS[field]}"
    )


def check_lens(obj: dict[str, Any], data_view_id: str) -> None:
    refs = {r["name"]: r for r in obj["references"]}
    vis = obj["attributes"]["state"]["visualization"]
    for layer_id, layer in lens_layers(obj).items():
        ref = refs.get(f"indexpattern-datasource-layer-{layer_id}")
        assert ref and ref["type"] == "index-pattern" and ref["id"] == data_view_id, (
            f"{obj['id']}: layer {layer_id} is not bound to the data view"
        )
        columns = layer["columns"]
        assert set(layer["columnOrder"]) == set(columns), f"{obj['id']}: columnOrder != columns"
        for col_id, col in columns.items():
            owner = f"{obj['id']}/{col_id}"
            check_field(owner, col["operationType"], col.get("sourceField"))
            for ref_id in col.get("references", []):
                assert ref_id in columns, f"{owner}: references missing column {ref_id}"
            params = col.get("params", {})
            if col["operationType"] == "formula":
                assert not params.get("isFormulaBroken"), f"{owner}: formula marked broken"
                calls = formula_fields(params["formula"])
                assert calls, f"{owner}: formula {params['formula']!r} uses no field"
                for fn, field in calls:
                    check_field(owner, fn, field)
            if col["operationType"] == "math":
                assert params["tinymathAst"]["args"], f"{owner}: empty math"
            if col["operationType"] == "terms":
                order = params["orderBy"]
                if order["type"] == "column":
                    assert order["columnId"] in columns, f"{owner}: orders by a missing column"
                if order["type"] == "custom":
                    agg = params["orderAgg"]
                    check_field(owner + "/orderAgg", agg["operationType"], agg.get("sourceField"))
        # Every column the chart or table shows exists.
        shown: list[str] = []
        if obj["attributes"]["visualizationType"] == "lnsXY":
            for vlayer in vis["layers"]:
                if vlayer["layerId"] == layer_id:
                    shown += [vlayer["xAccessor"], *vlayer["accessors"]]
                    shown += [vlayer["splitAccessor"]] if vlayer.get("splitAccessor") else []
        elif obj["attributes"]["visualizationType"] == "lnsDatatable" and vis["layerId"] == layer_id:
            shown += [c["columnId"] for c in vis["columns"]]
            shown += [vis["sorting"]["columnId"]] if vis.get("sorting") else []
        assert shown, f"{obj['id']}: the visualization shows nothing of layer {layer_id}"
        for col_id in shown:
            assert col_id in columns, f"{obj['id']}: shows missing column {col_id}"


def check_formula_helpers(obj: dict[str, Any]) -> None:
    """A formula's stored helper columns compute what its text says (Lens runs the helpers)."""
    for layer in lens_layers(obj).values():
        columns = layer["columns"]
        for col_id, col in columns.items():
            if col["operationType"] != "formula":
                continue
            (math_id,) = col["references"]
            math = columns[math_id]
            ast = math["params"]["tinymathAst"]
            assert math["operationType"] == "math" and ast["text"] == col["params"]["formula"], col_id
            helpers = [columns[a] for a in ast["args"]]
            pairs = [(h["operationType"], h["sourceField"]) for h in helpers]
            assert pairs == formula_fields(col["params"]["formula"]), f"{col_id}: helpers {pairs} != formula"


def check_migration_versions(objs: list[dict[str, Any]], kibana: Version) -> None:
    for obj in objs:
        for key in ("coreMigrationVersion", "typeMigrationVersion"):
            assert key in obj, f"{obj['id']}: {key} missing (Kibana would run every migration since 7.0)"
            assert Version(obj[key]) <= kibana, f"{obj['id']}: {key} {obj[key]} is newer than Kibana {kibana}"


def check_dashboard(objs: list[dict[str, Any]]) -> None:
    boards = of_type(objs, "dashboard")
    assert len(boards) == 1, f"expected one dashboard, found {len(boards)}"
    board = boards[0]
    panels = json.loads(board["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in board["references"]}
    referenced = set()
    cells: set[tuple[int, int]] = set()
    indexes = [p["panelIndex"] for p in panels]
    assert len(indexes) == len(set(indexes)), "panelIndex values must be unique"
    for panel in panels:
        name = f"{panel['panelIndex']}:{panel['panelRefName']}"  # how Kibana names panel references
        assert name in refs, f"panel {panel['panelIndex']} has no reference {name!r}"
        assert refs[name]["type"] == panel["type"], f"panel {panel['panelIndex']} type mismatch"
        referenced.add(refs[name]["id"])
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 48, f"panel {grid} off the grid"
        area = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not area & cells, f"panel {panel['panelIndex']} overlaps another"
        cells |= area
    visualizations = {o["id"] for o in objs if o["type"] in {"lens", "visualization"}}
    assert referenced == visualizations, (
        f"dashboard panels {sorted(referenced)} != visualizations in the file {sorted(visualizations)}"
    )
    attrs = board["attributes"]
    assert attrs.get("timeRestore") is True and attrs.get("timeFrom", "").startswith("now-")
    assert attrs.get("refreshInterval", {}).get("pause") is False, "a live dashboard refreshes itself"


def columns_of(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (layer,) = lens_layers(obj).values()
    return dict(layer["columns"])


def find(
    objs: list[dict[str, Any]], vis_type: str, test: Callable[[dict[str, dict[str, Any]]], bool]
) -> bool:
    return any(
        test(columns_of(o)) for o in of_type(objs, "lens") if o["attributes"]["visualizationType"] == vis_type
    )


def has(columns: dict[str, dict[str, Any]], operation: str, field: str | None = None) -> bool:
    return any(
        c["operationType"] == operation and (field is None or c.get("sourceField") == field)
        and "Part of" not in c.get("label", "")  # formula helpers do not count as shown columns
        for c in columns.values()
    )  # fmt: skip


def is_ctr(columns: dict[str, dict[str, Any]]) -> bool:
    return any(
        c["operationType"] == "formula" and c["params"]["formula"].replace(" ", "") == SPEC_CTR
        for c in columns.values()
    )


def per_minute(columns: dict[str, dict[str, Any]]) -> bool:
    return any(
        c["operationType"] == "date_histogram"
        and c["sourceField"] == "time"
        and c["params"]["interval"] == "1m"
        for c in columns.values()
    )


def check_required_visualizations(objs: list[dict[str, Any]]) -> None:
    assert find(
        objs, "lnsXY", lambda c: per_minute(c) and has(c, "sum", "impression") and has(c, "sum", "click")
    ), "no chart of impressions and clicks per minute"
    assert find(objs, "lnsXY", lambda c: per_minute(c) and has(c, "terms", "segment_id") and is_ctr(c)), (
        "no chart of CTR (sum click / sum impression) by segment per minute"
    )
    tables = [
        o
        for o in of_type(objs, "lens")
        if o["attributes"]["visualizationType"] == "lnsDatatable"
        and (lambda c: has(c, "terms", "article_id") and has(c, "sum", "impression") and has(c, "sum", "click") and is_ctr(c))(columns_of(o))
    ]  # fmt: skip
    assert tables, "no table of articles with impressions, clicks and CTR"
    sorting = tables[0]["attributes"]["state"]["visualization"].get("sorting") or {}
    ctr_col = next(k for k, c in columns_of(tables[0]).items() if c["operationType"] == "formula")
    assert sorting == {"columnId": ctr_col, "direction": "desc"}, "the article table must sort by CTR"


def check_all(objs: list[dict[str, Any]], kibana: Version) -> None:
    check_unique_ids(objs)
    check_references(objs)
    view = check_data_view(objs)
    for obj in of_type(objs, "lens"):
        check_lens(obj, view["id"])
        check_formula_helpers(obj)
    check_dashboard(objs)
    check_required_visualizations(objs)
    check_migration_versions(objs, kibana)


def kibana_version(services: dict[str, Any]) -> Version:
    return Version(str(services["kibana"]["image"]).rpartition(":")[2])


# --------------------------------------------------------------------------- the shipped file


def test_every_line_is_a_saved_object(objects: list[dict[str, Any]]) -> None:
    assert {o["type"] for o in objects} == {"index-pattern", "lens", "dashboard"}
    assert NDJSON.read_text(encoding="utf-8").endswith("\n")


def test_ids_unique_and_references_resolve(objects: list[dict[str, Any]]) -> None:
    check_unique_ids(objects)
    check_references(objects)


def test_data_view_is_exactly_the_default_index_with_time_field(objects: list[dict[str, Any]]) -> None:
    check_data_view(objects)


def test_visualizations_use_mapped_fields_and_consistent_columns(objects: list[dict[str, Any]]) -> None:
    view = check_data_view(objects)
    lenses = of_type(objects, "lens")
    assert len(lenses) >= 3
    for obj in lenses:
        check_lens(obj, view["id"])
        check_formula_helpers(obj)


def test_required_visualizations_present(objects: list[dict[str, Any]]) -> None:
    check_required_visualizations(objects)


def test_dashboard_shows_every_visualization(objects: list[dict[str, Any]]) -> None:
    check_dashboard(objects)


def test_migration_versions_not_newer_than_compose_kibana(
    objects: list[dict[str, Any]], compose_services: dict[str, Any]
) -> None:
    check_migration_versions(objects, kibana_version(compose_services))


def test_ndjson_is_the_generators_output() -> None:
    spec = importlib.util.spec_from_file_location("kibana_build", KIBANA_DIR / "build.py")
    assert spec and spec.loader
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    assert build.INDEX == Settings().es_index
    assert build.render() == NDJSON.read_text(encoding="utf-8"), (
        "clickagg.ndjson is out of date: run python dashboards/kibana/build.py"
    )


# --------------------------------------------------------------------------- the checks can fail


def _lens(objs: list[dict[str, Any]], visualization_type: str) -> dict[str, Any]:
    return next(
        o for o in of_type(objs, "lens") if o["attributes"]["visualizationType"] == visualization_type
    )


def _first_layer(obj: dict[str, Any]) -> dict[str, Any]:
    return next(iter(lens_layers(obj).values()))


def _wildcard_title(objs: list[dict[str, Any]]) -> None:
    of_type(objs, "index-pattern")[0]["attributes"]["title"] = "clickstream-minutely*"


def _wrong_time_field(objs: list[dict[str, Any]]) -> None:
    of_type(objs, "index-pattern")[0]["attributes"]["timeFieldName"] = "@timestamp"


def _unknown_field(objs: list[dict[str, Any]]) -> None:
    col = next(
        c for c in _first_layer(_lens(objs, "lnsXY"))["columns"].values() if c["operationType"] == "sum"
    )
    col["sourceField"] = "impressions"


def _sum_of_keyword(objs: list[dict[str, Any]]) -> None:
    col = next(
        c for c in _first_layer(_lens(objs, "lnsXY"))["columns"].values() if c["operationType"] == "sum"
    )
    col["sourceField"] = "gender"


def _formula_unknown_field(objs: list[dict[str, Any]]) -> None:
    for obj in of_type(objs, "lens"):
        for col in _first_layer(obj)["columns"].values():
            if col["operationType"] == "formula":
                col["params"]["formula"] = "sum(clicks) / sum(impression)"


def _dangling_reference(objs: list[dict[str, Any]]) -> None:
    of_type(objs, "dashboard")[0]["references"][0]["id"] = "no-such-visualization"


def _duplicate_id(objs: list[dict[str, Any]]) -> None:
    objs.append(copy.deepcopy(of_type(objs, "lens")[0]))


def _panel_missing(objs: list[dict[str, Any]]) -> None:
    board = of_type(objs, "dashboard")[0]
    panels = json.loads(board["attributes"]["panelsJSON"])[:-1]
    board["attributes"]["panelsJSON"] = json.dumps(panels)


def _table_not_sorted(objs: list[dict[str, Any]]) -> None:
    _lens(objs, "lnsDatatable")["attributes"]["state"]["visualization"].pop("sorting")


def _future_migration(objs: list[dict[str, Any]]) -> None:
    objs[0]["typeMigrationVersion"] = "99.0.0"


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (_wildcard_title, "data view title"),
        (_wrong_time_field, "time field"),
        (_unknown_field, "not in the index mapping"),
        (_sum_of_keyword, "cannot aggregate 'gender'"),
        (_formula_unknown_field, "'clicks' is not in the index mapping"),
        (_dangling_reference, "not in the file"),
        (_duplicate_id, "duplicate saved object ids"),
        (_panel_missing, "dashboard panels"),
        (_table_not_sorted, "sort by CTR"),
        (_future_migration, "newer than Kibana"),
    ],
)
def test_checks_reject_a_broken_copy(
    objects: list[dict[str, Any]],
    compose_services: dict[str, Any],
    breakage: Callable[[list[Any]], None],
    message: str,
) -> None:
    check_all(objects, kibana_version(compose_services))  # the shipped file passes...
    broken = copy.deepcopy(objects)
    breakage(broken)
    with pytest.raises(AssertionError, match=re.escape(message)):  # ...the same checks catch this
        check_all(broken, kibana_version(compose_services))


def test_parse_rejects_a_bad_line() -> None:
    with pytest.raises(AssertionError, match="line 2"):
        parse_ndjson('{"id":"a","type":"lens","attributes":{},"references":[]}\n{not json}\n')


# --------------------------------------------------------------------------- kibana-setup


def setup_script(service: dict[str, Any]) -> str:
    entry = service.get("entrypoint") or []
    command = service.get("command") or []
    assert entry == ["/bin/sh", "-c"] and isinstance(command, list) and len(command) == 1, (
        "kibana-setup runs one shell script: entrypoint [/bin/sh, -c], command [script]"
    )
    return str(command[0])


def mount_target(service: dict[str, Any]) -> str:
    mounts = [str(v).split(":") for v in service.get("volumes") or []]
    found = [m for m in mounts if (ROOT / m[0]).resolve() == KIBANA_DIR.resolve()]
    assert found, "kibana-setup must mount ./dashboards/kibana"
    source, target, *mode = found[0]
    assert mode == ["ro"], "mount ./dashboards/kibana read-only"
    return target


def test_kibana_setup_service_imports_the_file(compose_services: dict[str, Any]) -> None:
    svc = compose_services.get("kibana-setup")
    assert isinstance(svc, dict), "docker-compose.yml has no kibana-setup service"
    image = str(svc.get("image", ""))
    assert image.startswith("curlimages/curl:") and re.fullmatch(r"\d+\.\d+\.\d+", image.rpartition(":")[2])
    assert (svc.get("depends_on") or {}).get("kibana", {}).get("condition") == "service_healthy"
    assert compose_services["kibana"].get("healthcheck"), "service_healthy needs Kibana's healthcheck"
    assert str(svc.get("restart", "no")) == "no", "a one-shot service must not restart"

    target = mount_target(svc)
    script = setup_script(svc)
    assert "$" not in script.replace("$$", ""), "a single $ would be eaten by compose interpolation"
    assert f"{IMPORT_PATH}?overwrite=true" in script
    assert "kbn-xsrf: true" in script
    assert f"file=@{PurePosixPath(target) / NDJSON.name}" in script, "posts the mounted clickagg.ndjson"
    assert "http://kibana:5601" in script
    assert '"success"' in script and "grep" in script, "the import answers 200 on failure too: check success"


class StubKibana:
    """Answers the import API from a script of (status, body), like a Kibana that is starting up."""

    def __init__(self, answers: list[tuple[int, dict[str, Any]]]) -> None:
        self.answers = answers
        self.requests: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        reader = await request.multipart()
        part = await reader.next()
        assert isinstance(part, BodyPartReader)
        self.requests.append(
            {
                "query": dict(request.query),
                "xsrf": request.headers.get("kbn-xsrf"),
                "filename": part.filename,
                "body": bytes(await part.read()),
            }
        )
        status, body = self.answers[min(len(self.requests), len(self.answers)) - 1]
        return web.json_response(body, status=status)  # note: `"success": true`, with a space


STARTING = (503, {"statusCode": 503, "error": "Service Unavailable", "message": "Kibana is starting"})
IMPORTED = (200, {"successCount": 5, "success": True, "successResults": []})
REFUSED = (200, {"successCount": 0, "success": False, "errors": [{"id": "x", "error": {"type": "unknown"}}]})


@pytest.mark.parametrize(
    ("answers", "exit_code", "requests"),
    [([STARTING, IMPORTED], 0, 2), ([REFUSED], 1, 1)],
    ids=["retries-until-kibana-is-up", "fails-when-kibana-refuses-objects"],
)
async def test_kibana_setup_script_posts_the_ndjson(
    compose_services: dict[str, Any],
    tmp_path: Path,
    answers: list[tuple[int, dict[str, Any]]],
    exit_code: int,
    requests: int,
) -> None:
    curl = shutil.which("curl")
    assert curl, "curl is needed to run the kibana-setup script (apt-get install -y curl)"
    svc = compose_services["kibana-setup"]
    # Compose turns $$ into $; the stub stands in for Kibana, the repo dir for the mount.
    script = (
        setup_script(svc)
        .replace("$$", "$")
        .replace("http://kibana:5601", "http://127.0.0.1:{port}")
        .replace(f"@{mount_target(svc)}/", f"@{KIBANA_DIR}/")
        .replace("/tmp/import.json", str(tmp_path / "import.json"))
    )
    stub = StubKibana(answers)
    app = web.Application()
    app.router.add_post(IMPORT_PATH, stub.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    output = tmp_path / "kibana-setup.log"
    try:
        with output.open("wb") as sink:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", script.replace("{port}", str(port)), stdout=sink, stderr=sink
            )
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    finally:
        await runner.cleanup()
    log = output.read_text(errors="replace")
    assert proc.returncode == exit_code, f"kibana-setup exited {proc.returncode}, not {exit_code}:\n{log}"
    assert len(stub.requests) == requests, f"{len(stub.requests)} import requests, expected {requests}\n{log}"
    last = stub.requests[-1]
    assert last["query"] == {"overwrite": "true"} and last["xsrf"] == "true"
    assert last["filename"] == NDJSON.name and last["body"] == NDJSON.read_bytes()
    assert ("imported" if exit_code == 0 else "refused") in log
