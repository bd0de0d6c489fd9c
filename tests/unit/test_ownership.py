"""Index ownership: who may write an index (pure decision), and that install() decides before writing."""

from __future__ import annotations

import asyncio
import fnmatch
import random
import socket
import time
from typing import Any

import pytest

from clickagg.config import ConfigError, Settings
from clickagg.core.days import daily_index
from clickagg.es import schema
from clickagg.es.errors import BadRequest, IndexMissing
from clickagg.es.ownership import (
    DOCUMENT_FIELDS,
    UNCLAIMED_META,
    Owner,
    OwnershipError,
    adopt_command,
    missing_fields,
    refusal,
)

OWNER = Owner("clickagg", 60_000, 10_000)
SUBJECT = "ES_INDEX clickstream-minutely"
ADOPT = "clickstream-minutely,clickstream-minutely-progress"


def test_owner_of_settings_and_its_meta() -> None:
    owner = Owner.of(Settings(app_id="other", window_seconds=45, allowed_lateness_seconds=3))
    assert owner == Owner("other", 45_000, 3_000)
    assert owner.meta() == {"clickagg": {"app_id": "other", "window_ms": 45_000, "lateness_ms": 3_000}}


def test_the_owner_itself_may_write() -> None:
    assert refusal(SUBJECT, OWNER.meta(), OWNER) is None
    assert refusal(SUBJECT, {**OWNER.meta(), "other_tool": {"x": 1}}, OWNER, documents=5) is None


def test_other_app_id_and_window_is_refused_with_the_one_line() -> None:
    mine = Owner.of(Settings(app_id="other", window_seconds=45))
    assert refusal(SUBJECT, OWNER.meta(), mine, documents=100) == (
        "ES_INDEX clickstream-minutely belongs to deployment APP_ID=clickagg (WINDOW_SECONDS=60, "
        "ALLOWED_LATENESS_SECONDS=10); this worker has APP_ID=other (WINDOW_SECONDS=45): "
        "use another ES_INDEX or the owner's settings"
    )


def test_other_app_id_alone() -> None:
    line = refusal(SUBJECT, OWNER.meta(), Owner("other", 60_000, 10_000))
    assert line is not None and line.endswith(
        "; this worker has APP_ID=other: use another ES_INDEX or the owner's settings"
    )


def test_same_app_id_other_window_or_lateness_is_refused_too() -> None:
    line = refusal(SUBJECT, OWNER.meta(), Owner("clickagg", 45_000, 10_000))
    assert line is not None and "this worker has WINDOW_SECONDS=45: use another" in line
    line = refusal(SUBJECT, OWNER.meta(), Owner("clickagg", 60_000, 2_500))
    assert line is not None and "this worker has ALLOWED_LATENESS_SECONDS=2.5: use another" in line
    line = refusal(SUBJECT, OWNER.meta(), Owner("clickagg", 30_000, 0))
    assert line is not None and "this worker has WINDOW_SECONDS=30, ALLOWED_LATENESS_SECONDS=0:" in line


def test_an_unreadable_owner_record_is_refused_not_taken_over() -> None:
    meta = {"clickagg": {"app_id": "clickagg", "window_ms": 60_000.0, "lateness_ms": "10000"}}
    line = refusal(SUBJECT, meta, OWNER)
    assert line is not None
    assert "this worker has WINDOW_SECONDS=60, ALLOWED_LATENESS_SECONDS=10: use another" in line
    assert "\n" not in line


def test_unclaimed_marker_is_claimed_even_with_documents() -> None:
    assert refusal(SUBJECT, UNCLAIMED_META, OWNER, documents=1000) is None


def test_no_owner_and_empty_is_claimed() -> None:
    assert refusal(SUBJECT, None, OWNER) is None
    assert refusal(SUBJECT, {"someone": "else"}, OWNER, documents=0) is None


def test_no_owner_with_clickagg_documents_is_refused_with_the_adopt_command() -> None:
    line = refusal(SUBJECT, None, OWNER, documents=42, missing_fields=[], adopt_targets=ADOPT)
    assert line == (
        "ES_INDEX clickstream-minutely holds 42 clickagg documents but records no owner (written by an "
        "older clickagg or by hand); if they are this deployment's (APP_ID=clickagg (WINDOW_SECONDS=60, "
        "ALLOWED_LATENESS_SECONDS=10)), adopt it with: "
        'curl -X PUT "$ELASTICSEARCH_URL/clickstream-minutely,clickstream-minutely-progress/_mapping'
        "?ignore_unavailable=true\" -H 'Content-Type: application/json' -d "
        '\'{"_meta":{"clickagg":{"app_id":"clickagg","window_ms":60000,"lateness_ms":10000}}}\'; '
        "otherwise use another ES_INDEX"
    )


def test_no_owner_with_foreign_documents_is_refused_without_adopting() -> None:
    line = refusal(SUBJECT, None, OWNER, documents=7, missing_fields=["time:date", "click:long"])
    assert line == (
        "ES_INDEX clickstream-minutely holds 7 documents and no clickagg owner, and its mapping is not "
        "clickagg's (no time:date, click:long): use another ES_INDEX"
    )


def test_adopt_command_never_holds_the_url_and_is_valid_json() -> None:
    import json
    import shlex

    cmd = adopt_command("a,a-progress", OWNER)
    words = shlex.split(cmd)
    assert words[:3] == ["curl", "-X", "PUT"]
    assert words[3] == "$ELASTICSEARCH_URL/a,a-progress/_mapping?ignore_unavailable=true"
    assert json.loads(words[-1]) == {"_meta": OWNER.meta()}


def test_missing_fields() -> None:
    props = {k: {"type": v} for k, v in DOCUMENT_FIELDS.items()}
    assert missing_fields(props, DOCUMENT_FIELDS) == []
    assert missing_fields({**props, "click": {"type": "keyword"}}, DOCUMENT_FIELDS) == ["click:long"]
    assert missing_fields(None, {"time": "date"}) == ["time:date"]


def test_ownership_error_is_a_config_error() -> None:
    assert issubclass(OwnershipError, ConfigError)


# install() against an in-memory stand-in for the few port calls (clickagg.es.port) it makes.


class FakeES:
    """The SearchEngine methods install() uses, raising the port's errors like the adapters do.

    Models what install() relies on: composable templates (patterns, mappings, aliases) applied when
    an index is created, aliases resolving to their indices, and mappings merged on put_mapping.
    """

    def __init__(self) -> None:
        self.templates: dict[str, Any] = {}
        self.store: dict[str, dict[str, Any]] = {}  # concrete index -> its mappings
        self.aliases: dict[str, set[str]] = {}  # concrete index -> its aliases
        self.docs: dict[str, int] = {}
        self.calls: list[tuple[str, str]] = []  # the writes, in order
        self.before_put_template: Any = None
        self.yield_points: Any = lambda: 0

    async def _yield(self) -> None:
        for _ in range(self.yield_points()):
            await asyncio.sleep(0)

    def resolve(self, name: str) -> list[str]:
        if name in self.store:
            return [name]
        return sorted(i for i, names in self.aliases.items() if name in names)

    async def get_index_templates(self, name: str) -> list[dict[str, Any]]:
        await self._yield()
        if name not in self.templates:
            return []
        return [{"name": name, "index_template": self.templates[name]}]

    async def put_index_template(self, name: str, body: dict[str, Any], *, create: bool = False) -> None:
        await self._yield()
        if self.before_put_template is not None:
            hook, self.before_put_template = self.before_put_template, None
            await hook()
        self.calls.append(("put_index_template", name))
        if create and name in self.templates:
            raise BadRequest(f"400 illegal_argument_exception: index template [{name}] already exists", 400)
        self.templates[name] = {"index_patterns": body["index_patterns"], "template": body["template"]}

    async def get_mapping(self, index: str) -> dict[str, Any]:
        await self._yield()
        found = self.resolve(index)
        if not found:
            raise IndexMissing("404 index_not_found_exception", 404)
        return {i: {"mappings": self.store[i]} for i in found}

    async def exists(self, index: str) -> bool:
        await self._yield()
        return bool(self.resolve(index))

    async def create_index(self, index: str, body: dict[str, Any]) -> None:
        await self._yield()
        self.calls.append(("create", index))
        if index in self.store:
            raise BadRequest("400 resource_already_exists_exception: exists", 400)
        template: dict[str, Any] = {}
        for t in self.templates.values():
            if any(fnmatch.fnmatchcase(index, p) for p in t["index_patterns"]):
                template = t["template"]
        self.store[index] = {**template.get("mappings", {}), **body["mappings"]}
        self.aliases[index] = set(template.get("aliases", {}))
        self.docs[index] = 0

    async def put_mapping(self, index: str, body: dict[str, Any]) -> None:
        await self._yield()
        for concrete in self.resolve(index):
            self.calls.append(("put_mapping", concrete))
            self.store[concrete] = {**self.store[concrete], **body}

    async def refresh(self, index: str) -> None:
        await self._yield()

    async def count(self, index: str) -> int:
        return sum(self.docs[i] for i in self.resolve(index))

    def meta(self, index: str) -> Any:
        metas = [self.store[i].get("_meta") for i in self.resolve(index)]
        assert metas and all(m == metas[0] for m in metas), metas
        return metas[0]

    def template_meta(self, index: str) -> Any:
        return self.templates[f"{index}-template"]["template"]["mappings"].get("_meta")


TODAY = daily_index("ix", int(time.time() * 1000))


def test_install_records_the_owner_everywhere() -> None:
    es = FakeES()
    asyncio.run(schema.install(es, "ix", OWNER))
    for name in ("ix", "ix-progress"):
        assert es.meta(name) == OWNER.meta()
        assert es.template_meta(name) == OWNER.meta()
    asyncio.run(schema.install(es, "ix", OWNER))  # a restart, or a second worker of the deployment


def test_another_deployment_writes_nothing_not_even_the_template() -> None:
    es = FakeES()
    asyncio.run(schema.install(es, "ix", OWNER))
    es.docs[TODAY] = 100
    before = repr((es.templates, es.store))
    es.calls.clear()
    with pytest.raises(OwnershipError, match=r"^ES_INDEX ix belongs to deployment APP_ID=clickagg "):
        asyncio.run(schema.install(es, "ix", Owner("other", 45_000, 10_000)))
    assert es.calls == []
    assert repr((es.templates, es.store)) == before


def test_a_template_of_another_deployment_alone_is_refused() -> None:
    """The indices were deleted, their templates remain: the templates' owner still owns the name."""
    es = FakeES()
    asyncio.run(schema.install(es, "ix", OWNER))
    es.store.clear()
    es.aliases.clear()
    es.calls.clear()
    with pytest.raises(OwnershipError, match=r"^ES_INDEX ix's index template ix-template belongs to"):
        asyncio.run(schema.install(es, "ix", Owner("clickagg", 45_000, 10_000)))
    assert es.calls == []


def test_template_created_concurrently_by_another_deployment_is_not_overwritten() -> None:
    """Both checked an empty cluster; the other deployment put its template first."""
    es = FakeES()
    other = Owner("other", 45_000, 10_000)

    async def other_is_quicker() -> None:
        await schema.install(es, "ix", other)

    es.before_put_template = other_is_quicker
    with pytest.raises(OwnershipError, match=r"^ES_INDEX ix's index template ix-template belongs to .*other"):
        asyncio.run(schema.install(es, "ix", OWNER))
    assert es.template_meta("ix") == other.meta() and es.meta("ix") == other.meta()


async def _race(es: FakeES, owners: list[Owner], seed: int) -> list[BaseException | None]:
    """Installs running at once, every Elasticsearch call a point where the others may go first."""
    rng = random.Random(seed)
    es.yield_points = lambda: rng.randrange(4)
    results = await asyncio.gather(*(schema.install(es, "ix", o) for o in owners), return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]


@pytest.mark.parametrize("seed", range(40))
def test_two_deployments_starting_at_once_on_a_new_index_one_wins(seed: int) -> None:
    es = FakeES()
    other = Owner("other", 45_000, 10_000)
    results = asyncio.run(_race(es, [OWNER, other], seed))
    refused = [r for r in results if r is not None]
    assert len(refused) == 1 and isinstance(refused[0], OwnershipError), results
    winner = OWNER if results[0] is None else other
    for name in ("ix", "ix-progress"):
        assert es.meta(name) == winner.meta()
        assert es.template_meta(name) == winner.meta()


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("prepared", ["nothing", "unclaimed", "owned"])
def test_workers_of_one_deployment_starting_at_once_all_start(seed: int, prepared: str) -> None:
    es = FakeES()
    if prepared != "nothing":
        asyncio.run(schema.install(es, "ix", OWNER if prepared == "owned" else None))
    assert asyncio.run(_race(es, [OWNER, OWNER, OWNER], seed)) == [None, None, None]
    for name in ("ix", "ix-progress"):
        assert es.meta(name) == OWNER.meta() and es.template_meta(name) == OWNER.meta()


@pytest.mark.parametrize("documents", [0, 12])
def test_a_single_index_named_es_index_is_refused_with_the_migration_and_left_alone(documents: int) -> None:
    """An older clickagg wrote one index named ES_INDEX; the name must now be the daily indices' alias."""
    es = FakeES()
    es.store["ix"] = dict(schema.MAPPINGS)  # an older clickagg: no _meta
    es.docs["ix"] = documents
    with pytest.raises(OwnershipError) as err:
        asyncio.run(schema.install(es, "ix", OWNER))
    assert str(err.value) == (
        "ES_INDEX ix is one index (clickagg before daily indices, or someone else's), but clickagg writes "
        "daily indices ix-YYYY.MM.DD behind an alias named ix: use a new ES_INDEX (the old index stays "
        "readable under its name) or delete ix and ix-progress to reuse the name"
    )
    assert es.calls == [] and "_meta" not in es.store["ix"]


def test_daily_indices_join_the_alias_and_carry_the_owner() -> None:
    es = FakeES()
    asyncio.run(schema.install(es, "ix", OWNER))
    assert es.resolve("ix") == [TODAY] and es.aliases[TODAY] == {"ix"}
    asyncio.run(es.create_index("ix-2020.01.01", {"mappings": {}}))  # as a bulk write auto-creates it
    assert es.resolve("ix") == ["ix-2020.01.01", TODAY] and es.meta("ix") == OWNER.meta()
    assert not any(fnmatch.fnmatchcase("ix-progress", p) for p in es.templates["ix-template"]["index_patterns"])
    with pytest.raises(OwnershipError, match=r"^ES_INDEX ix belongs to deployment APP_ID=clickagg "):
        asyncio.run(schema.install(es, "ix", Owner("other", 45_000, 10_000)))


def test_install_without_owner_marks_new_things_unclaimed_and_leaves_owned_ones_alone() -> None:
    es = FakeES()
    asyncio.run(schema.install(es, "ix"))
    assert es.meta("ix") == UNCLAIMED_META and es.template_meta("ix") == UNCLAIMED_META
    es.docs[TODAY] = 3  # a test's seed documents
    asyncio.run(schema.install(es, "ix", OWNER))  # the first worker claims it
    assert es.meta("ix") == OWNER.meta() and es.template_meta("ix") == OWNER.meta()
    es.calls.clear()
    asyncio.run(schema.install(es, "ix"))
    assert es.calls == []


def test_check_before_start_leaves_an_unreachable_elasticsearch_to_the_pipeline() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    schema.check_before_start(Settings(elasticsearch_url=f"http://127.0.0.1:{port}"))  # no exception
    asyncio.run(asyncio.sleep(0))  # and the thread's event loop is still usable
