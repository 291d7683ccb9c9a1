"""Pachyderm-format specs as its users write them: field names in both spellings, several
documents in one file, the fields cairn accepts without Kubernetes, and the join and group
examples of Pachyderm's READMEs (data written here after their descriptions) with the
variables Pachyderm sets for each datum."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic.alias_generators import to_camel

from cairn.data import CommitInfo, DataStore, Ref
from cairn.pipelines import Pipelines, PipelineSpec, SpecError
from cairn.pipelines.datums import build_datums
from cairn.pipelines.executor import workers_for
from cairn.pipelines.spec import load_specs

from .conftest import Recorder

MakeSpec = Callable[..., PipelineSpec]
Put = Callable[..., CommitInfo]
Contents = Callable[..., dict[str, bytes]]

# Every field of the spec cairn reads, in snake_case (Pachyderm's proto names).
FULL: dict[str, Any] = {
    "pipeline": {"name": "edges", "project": {"name": "default"}},
    "description": "all fields",
    "transform": {
        "cmd": ["python3", "edges.py"],
        "stdin": ["x"],
        "env": {"MODE": "fast"},
        "image": "python:3.12",
        "err_cmd": ["true"],
        "err_stdin": ["y"],
        "accept_return_code": [1],
        "datum_batching": False,
        "secrets": [{"name": "s3", "key": "id", "env_var": "KEY_ID"}],
        "working_dir": "src",
        "user": "nobody",
        "debug": True,
        "image_pull_secrets": ["regcred"],
        "memory_volume": True,
    },
    "input": {
        "cross": [
            {
                "join": [
                    {
                        "pfs": {
                            "repo": "stores",
                            "branch": "master",
                            "glob": "/STOREID(*).txt",
                            "name": "stores",
                            "join_on": "$1",
                            "outer_join": True,
                            "lazy": True,
                            "empty_files": True,
                            "project": "default",
                        }
                    },
                    {"pfs": {"repo": "purchases", "glob": "/*_STOREID(*).txt", "join_on": "$1"}},
                ]
            },
            {"group": [{"pfs": {"repo": "labs", "glob": "/*_(*).txt", "group_by": "$1"}}]},
            {
                "union": [
                    {
                        "pfs": {
                            "repo": "raw",
                            "glob": "/",
                            "commit": "master^",
                            "trigger": {
                                "branch": "staging",
                                "all": True,
                                "cron_spec": "@daily",
                                "rate_limit_spec": "@hourly",
                                "size": "1M",
                                "commits": 3,
                            },
                        }
                    },
                    {
                        "cron": {
                            "name": "tick",
                            "spec": "@every 1h30m",
                            "repo": "ticks",
                            "overwrite": True,
                            "start": "2024-01-01T00:00:00Z",
                            "project": "default",
                        }
                    },
                ]
            },
        ]
    },
    "parallelism_spec": {"coefficient": 0.5},
    "datum_tries": 2,
    "datum_timeout": "1m",
    "output_branch": "master",
    "reprocess_spec": "every_job",
    "salt": "pepper",
    "resource_requests": {"cpu": 1, "memory": "1Gi", "disk": "1Gi"},
    "resource_limits": {
        "cpu": 2,
        "memory": "2Gi",
        "disk": "2Gi",
        "gpu": {"type": "x", "number": 0},
    },
    "sidecar_resource_requests": {"cpu": 0.5},
    "sidecar_resource_limits": {"memory": "1Gi"},
    "autoscaling": True,
    "scheduling_spec": {"node_selector": {"disk": "ssd"}, "priority_class_name": "high"},
    "tolerations": [
        {"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
        {"key": "t", "operator": "Exists", "toleration_seconds": 30},
    ],
    "metadata": {"annotations": {"team": "vision"}, "labels": {"tier": "gold"}},
    "pod_spec": '{"nodeName": "n"}',
    "pod_patch": '[{"op": "add", "path": "/x", "value": 1}]',
    "spec_commit": {"id": "abc"},
}
# Fields whose values are free mappings: their keys are data, not field names.
MAPS = {"env", "node_selector", "annotations", "labels", "spec_commit"}


def key_paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every field name in ``node`` that has two spellings."""
    if isinstance(node, dict):
        for key, value in node.items():
            if to_camel(key) != key:
                yield (*path, key)
            if key not in MAPS:
                yield from key_paths(value, (*path, key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from key_paths(item, (*path, index))


def camelize(doc: dict[str, Any], paths: list[tuple[Any, ...]]) -> dict[str, Any]:
    """``doc`` with the fields at ``paths`` renamed to camelCase (keys keep their order)."""
    out = copy.deepcopy(doc)
    for path in sorted(paths, key=len, reverse=True):  # inner keys first: outer paths hold
        parent = out
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        renamed = {to_camel(k) if k == key else k: v for k, v in parent.items()}
        parent.clear()
        parent.update(renamed)
    return out


PATHS = list(key_paths(FULL))
SNAKE = load_specs(json.dumps(FULL))[0]


def test_the_full_spec_sets_every_field_of_every_model() -> None:
    def unset(model: Any, where: str) -> Iterator[str]:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if name not in model.model_fields_set and name not in ("processes",):
                yield f"{where}.{name}"
            children = value if isinstance(value, list) else [value]
            for child in children:
                if hasattr(type(child), "model_fields"):
                    yield from unset(child, f"{where}.{name}")

    # Input leaves set one kind each, so only the fields no leaf sets count.
    missing = {p.rsplit(".", 1)[-1] for p in unset(SNAKE, "spec")}
    assert missing <= {
        "pfs",
        "cron",
        "cross",
        "union",
        "join",
        "group",
        "gpu",
        "constant",
        "datum_set_spec",
        # a spout has no input and a service is not a job: test_spout_and_service_camel_case
        "spout",
        "service",
        "outer_join",
        "join_on",
        "group_by",
        "trigger",
        "commit",
        "name",
        "branch",
        "lazy",
        "empty_files",
        "project",
        "cpu",
        "memory",
        "disk",
        "effect",
        "value",
        "toleration_seconds",
    }
    assert len(PATHS) > 30


@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, p)) for p in PATHS])
def test_each_field_in_camel_case_reads_as_in_snake_case(path: tuple[Any, ...]) -> None:
    assert load_specs(json.dumps(camelize(FULL, [path])))[0] == SNAKE


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(PATHS), unique=True))
def test_any_mix_of_spellings_in_one_file_reads_the_same(paths: list[tuple[Any, ...]]) -> None:
    assert load_specs(json.dumps(camelize(FULL, paths)))[0] == SNAKE


def test_the_stored_form_is_snake_case_whatever_the_spelling() -> None:
    everything = load_specs(json.dumps(camelize(FULL, PATHS)))[0]
    assert everything.canonical_json() == SNAKE.canonical_json()
    assert "joinOn" not in SNAKE.canonical_json()


def _problem(doc: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        load_specs(json.dumps(doc))
    return info.value.problems


@pytest.mark.parametrize("path", PATHS, ids=[".".join(map(str, p)) for p in PATHS])
@pytest.mark.parametrize("camel", [False, True], ids=["snake", "camel"])
def test_a_misspelt_field_is_named_by_path_with_the_nearest_name(
    path: tuple[Any, ...], camel: bool
) -> None:
    doc = camelize(FULL, [path]) if camel else copy.deepcopy(FULL)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    key = to_camel(path[-1]) if camel else path[-1]
    parent[key + "x"] = parent.pop(key)
    where = ".".join(str(p) for p in path[:-1])
    where = where.replace(".0", "[0]").replace(".1", "[1]").replace(".2", "[2]")
    expected = (f"{where}.{key}x" if where else f"{key}x").replace(".[", "[")

    problems = dict(_problem(doc))

    assert expected in problems
    assert problems[expected].endswith(f"did you mean {key!r}?")


def test_a_field_set_in_both_spellings_is_refused() -> None:
    doc = copy.deepcopy(FULL)
    doc["datumTries"] = 2
    assert [field for field, _ in _problem(doc)] == ["datum_tries"]


def test_json_documents_separated_by_dashes_all_load() -> None:
    one = {**FULL, "pipeline": {"name": "one"}}
    two = {**FULL, "pipeline": {"name": "two"}}
    text = json.dumps(one, indent=2) + "\n---\n" + json.dumps(camelize(two, PATHS)) + "\n---\n"
    assert [s.name for s in load_specs(text)] == ["one", "two"]


def test_only_the_default_project_is_accepted() -> None:
    doc = copy.deepcopy(FULL)
    doc["pipeline"]["project"] = {"name": "other"}
    assert [field for field, _ in _problem(doc)] == ["pipeline.project.name"]


def test_parallelism_coefficient_is_a_share_of_the_cores() -> None:
    assert SNAKE.parallelism_spec is not None
    assert SNAKE.parallelism_spec.workers(8) == 4
    assert SNAKE.parallelism_spec.workers(1) == 1


def test_fields_without_effect_are_listed_with_why() -> None:
    noted = {note.split(" ", 1)[0] for note in SNAKE.no_effect()}
    assert noted == {
        "autoscaling",
        "metadata",
        "pod_patch",
        "pod_spec",
        "scheduling_spec",
        "sidecar_resource_limits",
        "sidecar_resource_requests",
        "spec_commit",
        "tolerations",
        "transform.debug",
        "transform.image_pull_secrets",
        "transform.memory_volume",
        "transform.user",
    }


# -- behaviour ----------------------------------------------------------------------------
# Prints each variable Pachyderm sets for the datum, then copies the inputs like COPY.
SHOW_ENV = (
    'env | grep -E "^(PACH_|stores|purchases|labs)" | sort > "$CAIRN_PFS/out/env-$PACH_DATUM_ID"'
)

STORES = {
    "STOREID1.txt": {"storeid": "1", "address": {"zipcode": "02108"}},
    "STOREID2.txt": {"storeid": "2", "address": {"zipcode": "90210"}},
    "STOREID3.txt": {"storeid": "3", "address": {"zipcode": "02108"}},
    "STOREID4.txt": {"storeid": "4", "address": {"zipcode": "94107"}},
}
PURCHASES = {
    "ORDERW080520_STOREID1.txt": b"order 080520 store 1\n",
    "ORDERW080521_STOREID1.txt": b"order 080521 store 1\n",
    "ORDERW078929_STOREID3.txt": b"order 078929 store 3\n",
    "ORDERW078930_STOREID2.txt": b"order 078930 store 2\n",
    "ORDERW078931_STOREID2.txt": b"order 078931 store 2\n",
    "ORDERW078932_STOREID2.txt": b"order 078932 store 2\n",
    "ORDERW099999_STOREID9.txt": b"order 099999 store 9\n",  # no such store
}
# Files each matched purchase under its store's zip code, as the README's inner join code
# does. Pachyderm appends what several datums write to one path; cairn refuses two datums
# writing one path (DESIGN.md), so each purchase keeps its own file in the zip's folder.
BY_ZIP = (
    'for s in "$CAIRN_PFS"/stores/*; do '
    "zip=$(python3 -c \"import json,sys; print(json.load(open(sys.argv[1]))['address']"
    '[\'zipcode\'])" "$s"); mkdir -p "$CAIRN_PFS/out/$zip"; '
    'cp "$CAIRN_PFS"/purchases/* "$CAIRN_PFS/out/$zip/" 2>/dev/null || '
    'touch "$CAIRN_PFS/out/$zip/none-$PACH_DATUM_stores_JOIN_ON"; done'
)


@pytest.fixture
def retail(put: Put) -> None:
    put("stores", {k: json.dumps(v).encode() for k, v in STORES.items()})
    put("purchases", PURCHASES)


def join_input(outer_stores: bool = False, outer_purchases: bool = False) -> dict[str, Any]:
    return {
        "join": [
            {
                "pfs": {
                    "repo": "stores",
                    "glob": "/STOREID(*).txt",
                    "joinOn": "$1",
                    "outerJoin": outer_stores,
                }
            },
            {
                "pfs": {
                    "repo": "purchases",
                    "glob": "/*_STOREID(*).txt",
                    "join_on": "$1",
                    "outer_join": outer_purchases,
                }
            },
        ]
    }


def per_zip(contents: dict[str, bytes]) -> dict[str, int]:
    """Purchases per zip code: the README's output, one file per zip code."""
    totals: dict[str, int] = {}
    for name, body in contents.items():
        zipcode = name.split("/", 1)[0]
        totals[zipcode] = totals.get(zipcode, 0) + body.count(b"order")
    return totals


def test_inner_join_lists_purchases_by_zip_code(
    retail: None, pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, contents: Contents
) -> None:
    pipelines.create_pipeline(make_spec("inner_join", join_input(), BY_ZIP), spec_dir)
    (job,) = pipelines.propagate()
    assert job.state == "success", job.reason
    # The README: two files, 02108 and 90210, three purchases each.
    assert per_zip(contents("inner_join")) == {"02108": 3, "90210": 3}


def test_outer_join_on_stores_sees_every_store(
    retail: None, pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, contents: Contents
) -> None:
    spec = make_spec("outer", join_input(outer_stores=True), BY_ZIP)
    pipelines.create_pipeline(spec, spec_dir)
    pipelines.propagate()
    # Store 4 has no purchase, yet has its datum (an empty file for its zip code).
    assert per_zip(contents("outer")) == {"02108": 3, "90210": 3, "94107": 0}


def test_outer_join_on_purchases_sees_every_purchase(retail: None, data: DataStore) -> None:
    spec = load_specs(
        json.dumps(
            {
                "pipeline": {"name": "o"},
                "transform": {"cmd": ["true"]},
                "input": join_input(outer_purchases=True),
            }
        )
    )[0]
    datums = build_datums(data, spec.input, _heads(data, spec))
    roots = sorted(tuple(sorted(r[3] for r in d.roots)) for d in datums)
    # Purchase of store 9 alone; store 4 (no purchase) has no datum.
    assert ("/ORDERW099999_STOREID9.txt",) in roots
    assert not any("/STOREID4.txt" in r for r in roots)
    assert len(datums) == 7


def _heads(data: DataStore, spec: PipelineSpec) -> dict[tuple[str, str], CommitInfo]:
    return {
        (p.repo, p.branch): data.resolve(Ref(p.repo, p.branch)) for p in spec.input.pfs_inputs()
    }


def test_join_without_join_on_is_the_cross_product(retail: None, data: DataStore) -> None:
    spec = load_specs(
        json.dumps(
            {
                "pipeline": {"name": "j"},
                "transform": {"cmd": ["true"]},
                "input": {
                    "join": [
                        {"pfs": {"repo": "stores", "glob": "/*"}},
                        {"pfs": {"repo": "purchases", "glob": "/*"}},
                    ]
                },
            }
        )
    )[0]
    datums = build_datums(data, spec.input, _heads(data, spec))
    assert len(datums) == len(STORES) * len(PURCHASES)


def test_group_without_group_by_is_one_datum(retail: None, data: DataStore) -> None:
    spec = load_specs(
        json.dumps(
            {
                "pipeline": {"name": "g"},
                "transform": {"cmd": ["true"]},
                "input": {
                    "group": [
                        {"pfs": {"repo": "stores", "glob": "/*"}},
                        {"pfs": {"repo": "purchases", "glob": "/*", "groupBy": "$1"}},
                    ]
                },
            }
        )
    )[0]
    datums = build_datums(data, spec.input, _heads(data, spec))
    assert len(datums) == 1
    assert len(datums[0].files) == len(STORES) + len(PURCHASES)


LAB = {  # test results named <test>_<patient>_<date>.txt, as in the group example's lab case
    "LIPID_PATIENT1_T1000.txt": b"ldl 120\n",
    "GLUCOSE_PATIENT1_T1001.txt": b"glucose 90\n",
    "LIPID_PATIENT2_T1002.txt": b"ldl 160\n",
    "CBC_PATIENT3_T1003.txt": b"wbc 6\n",
    "GLUCOSE_PATIENT3_T1004.txt": b"glucose 101\n",
}


def test_group_by_patient_gathers_each_patients_results(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, contents: Contents
) -> None:
    put("labs", LAB)
    cmd = 'cat "$CAIRN_PFS"/labs/* > "$CAIRN_PFS/out/$PACH_DATUM_labs_GROUP_BY.txt"'
    tree = {"group": [{"pfs": {"repo": "labs", "glob": "/*_(*)_*.txt", "groupBy": "$1"}}]}
    pipelines.create_pipeline(make_spec("lab", tree, cmd), spec_dir)
    (job,) = pipelines.propagate()
    out = contents("lab")
    assert job.state == "success"
    assert sorted(out) == ["PATIENT1.txt", "PATIENT2.txt", "PATIENT3.txt"]
    assert sorted(out["PATIENT1.txt"].split(b"\n")) == [b"", b"glucose 90", b"ldl 120"]
    assert out["PATIENT2.txt"] == b"ldl 160\n"


RETAIL = {  # the group example's retail case: stores, purchases and returns by store id
    "stores": {"STOREID1.txt": b"store 1\n", "STOREID2.txt": b"store 2\n"},
    "purchases": {
        "P1_STOREID1.txt": b"+10\n",
        "P2_STOREID1.txt": b"+5\n",
        "P3_STOREID2.txt": b"+7\n",
    },
    "returns": {"R1_STOREID1.txt": b"-5\n", "R2_STOREID2.txt": b"-7\n"},
}
NET = (
    'cat "$CAIRN_PFS"/purchases/* "$CAIRN_PFS"/returns/* 2>/dev/null | paste -sd+ | bc '
    '> "$CAIRN_PFS/out/$PACH_DATUM_stores_GROUP_BY.txt"'
)


def test_group_by_store_nets_purchases_and_returns(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, contents: Contents
) -> None:
    for repo, files in RETAIL.items():
        put(repo, files)
    cmd = NET.replace("| bc", "| python3 -c 'import sys; print(eval(sys.stdin.read()))'")
    tree = {
        "group": [
            {"pfs": {"repo": "stores", "glob": "/STOREID(*).txt", "group_by": "$1"}},
            {"pfs": {"repo": "purchases", "glob": "/*_STOREID(*).txt", "groupBy": "$1"}},
            {"pfs": {"repo": "returns", "glob": "/*_STOREID(*).txt", "group_by": "$1"}},
        ]
    }
    pipelines.create_pipeline(make_spec("retail", tree, cmd), spec_dir)
    (job,) = pipelines.propagate()
    assert job.state == "success", job.reason
    assert contents("retail") == {"1.txt": b"10\n", "2.txt": b"0\n"}


def test_each_datum_sees_pachyderms_variables(
    retail: None,
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    contents: Contents,
) -> None:
    pipelines.create_pipeline(make_spec("show", join_input(), SHOW_ENV), spec_dir)
    (job,) = pipelines.propagate()
    stores_head = data.resolve(Ref("stores", "master"))
    purchases_head = data.resolve(Ref("purchases", "master"))
    envs = [
        dict(line.split("=", 1) for line in body.decode().splitlines())
        for body in contents("show").values()
    ]
    assert len(envs) == 6
    for env in envs:
        assert env["PACH_JOB_ID"] == job.id
        assert env["PACH_OUTPUT_COMMIT_ID"] == job.id
        assert env["stores_COMMIT"] == stores_head.id
        assert env["purchases_COMMIT"] == purchases_head.id
        assert env["PACH_DATUM_stores_JOIN_ON"] == env["PACH_DATUM_purchases_JOIN_ON"]
        assert env["stores"].endswith(f"/stores/STOREID{env['PACH_DATUM_stores_JOIN_ON']}.txt")
        assert len(env["PACH_DATUM_ID"]) == 64
    assert job.output_commit == job.id


def test_kubernetes_fields_are_noted_on_the_job(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, recorder: Recorder
) -> None:
    put("in", {"a": b"a"})
    spec = make_spec("k", "in", tolerations=[{"key": "gpu"}], podPatch="[]")
    pipelines.create_pipeline(spec, spec_dir)
    pipelines.propagate(recorder)
    notes = [message for _, message in recorder.args("note")]
    assert any(n.startswith("tolerations is recorded and has no effect") for n in notes)
    assert any(n.startswith("pod_patch is recorded and has no effect") for n in notes)


def test_working_dir_is_where_the_command_runs(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, contents: Contents
) -> None:
    put("in", {"a": b"a"})
    (spec_dir / "src").mkdir()
    (spec_dir / "src" / "run.sh").write_text('pwd > "$CAIRN_PFS/out/where"\n')
    spec = make_spec("w", "in", ["bash", "run.sh"], transform={"workingDir": "src"})
    pipelines.create_pipeline(spec, spec_dir)
    (job,) = pipelines.propagate()
    assert job.state == "success", job.reason
    assert contents("w")["where"].decode().strip() == str((spec_dir / "src").resolve())


def test_a_missing_working_dir_fails_the_job_saying_so(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put
) -> None:
    put("in", {"a": b"a"})
    spec = make_spec("w", "in", transform={"working_dir": "/no/such/folder"})
    pipelines.create_pipeline(spec, spec_dir)
    (job,) = pipelines.propagate()
    assert job.state == "failure"
    assert "working_dir" in job.reason


def test_pfs_commit_pins_the_input(
    pipelines: Pipelines, make_spec: MakeSpec, spec_dir: Path, put: Put, contents: Contents
) -> None:
    first = put("in", {"a": b"1"})
    put("in", {"a": b"2"})
    tree = {"pfs": {"repo": "in", "glob": "/*", "commit": first.id}}
    pipelines.create_pipeline(make_spec("pin", tree), spec_dir)
    pipelines.propagate()
    assert contents("pin") == {"a": b"1"}


def test_moving_a_branch_back_brings_the_output_back(
    pipelines: Pipelines,
    data: DataStore,
    make_spec: MakeSpec,
    spec_dir: Path,
    put: Put,
    contents: Contents,
) -> None:
    put("in", {"a": b"1"})
    pipelines.create_pipeline(make_spec("copy"), spec_dir)
    pipelines.propagate()
    put("in", {"a": b"2", "b": b"new"})
    pipelines.propagate()
    assert contents("copy") == {"a": b"2", "b": b"new"}

    data.create_branch("in", "master", "master^")
    (job,) = pipelines.propagate()

    assert job.state == "success"
    assert contents("copy") == {"a": b"1"}
    assert pipelines.propagate() == []


@pytest.mark.parametrize(
    ("wanted", "requests", "expected"),
    [
        (8, None, 8),
        (8, {"cpu": 2}, 4),  # 8 cores hold four workers of two cores each
        (8, {"cpu": 16}, 1),  # more than the machine: one worker still runs
        (8, {"memory": "3Gi"}, 5),  # 16 GiB hold five workers of 3 GiB
        (2, {"cpu": 0.5, "memory": "1Gi"}, 2),
    ],
)
def test_resource_requests_bound_the_workers_that_fit(
    wanted: int, requests: dict[str, Any] | None, expected: int
) -> None:
    spec = load_specs(json.dumps({**FULL, "resource_requests": requests}))[0]
    assert workers_for(wanted, spec.resource_requests, 8, 16 << 30) == expected


def test_spout_and_service_load_in_either_spelling() -> None:
    spout = {
        "pipeline": {"name": "feed"},
        "transform": {"cmd": ["python3", "feed.py"]},
        "spout": {"service": {"internalPort": 8000, "external_port": 8001}},
    }
    loaded = load_specs(json.dumps(spout))[0]
    assert loaded.spout is not None and loaded.spout.service is not None
    assert (loaded.spout.service.internal_port, loaded.spout.service.external_port) == (8000, 8001)
    service = {
        "pipeline": {"name": "web"},
        "transform": {"cmd": ["python3", "-m", "http.server"]},
        "input": {"pfs": {"repo": "site", "glob": "/"}},
        "service": {"internalPort": 8000, "externalPort": 8080, "type": "NodePort"},
    }
    assert load_specs(json.dumps(service))[0].service.external_port == 8080
