"""Tests for cairn.pipelines.spec: loading, validation errors with field paths, hashing."""

from __future__ import annotations

import json
from typing import Any

import pydantic
import pytest

from cairn.pipelines.errors import PipelineError, SpecError
from cairn.pipelines.spec import (
    MAX_INPUT_DEPTH,
    MAX_NESTING,
    MAX_SPEC_BYTES,
    MAX_VALUES,
    Input,
    PFSInput,
    PipelineSpec,
    load_spec_file,
    load_specs,
    parse_duration,
    parse_spec,
    read_spec,
)
from cairn.storage.errors import CairnError

FULL_YAML = """
pipeline:
  name: edges
description: Detect edges in images.
transform:
  image: python:3.12
  cmd: [python, /edges.py]
  stdin: ["echo hi"]
  env: {MODE: fast}
  err_cmd: ["true"]
  accept_return_code: [1, 2]
input:
  cross:
    - pfs: {repo: images, branch: dev, glob: "/*", name: pics, lazy: true}
    - pfs: {repo: config, glob: "/", empty_files: true}
parallelism_spec: {constant: 4}
datum_tries: 5
datum_timeout: 1m30s
output_branch: out-branch
reprocess_spec: every_job
salt: pepper
"""


def pfs(repo: str, glob: str = "/*", **extra: Any) -> dict[str, Any]:
    return {"pfs": {"repo": repo, "glob": glob, **extra}}


def spec_dict(name: str = "edges", input: dict[str, Any] | None = None, **extra: Any) -> dict:
    return {
        "pipeline": {"name": name},
        "transform": {"cmd": ["python", "/edges.py"]},
        "input": input if input is not None else pfs("images"),
        **extra,
    }


def load_one(data: dict[str, Any]) -> PipelineSpec:
    (spec,) = load_specs(json.dumps(data))
    return spec


def spec_error(data: Any) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_specs(json.dumps(data))
    return info.value


def test_full_yaml_spec_loads_every_field() -> None:
    (spec,) = load_specs(FULL_YAML)
    assert spec.name == "edges"
    assert spec.transform.cmd == ["python", "/edges.py"]
    assert spec.transform.env == {"MODE": "fast"}
    assert spec.transform.accept_return_code == [1, 2]
    assert spec.input.kind == "cross"
    first, second = spec.input.pfs_inputs()
    assert (first.repo, first.branch, first.input_name, first.lazy) == (
        "images",
        "dev",
        "pics",
        True,
    )
    assert (second.input_name, second.empty_files) == ("config", True)
    assert spec.parallelism_spec is not None and spec.parallelism_spec.constant == 4
    assert spec.datum_tries == 5
    assert spec.datum_timeout == 90.0
    assert spec.output_branch == "out-branch"
    assert spec.reprocess_spec == "every_job"
    assert spec.salt == "pepper"


def test_json_spec_equals_yaml_spec() -> None:
    (from_yaml,) = load_specs(FULL_YAML)
    (from_json,) = load_specs(json.dumps(from_yaml.model_dump(mode="json"), indent=2))
    assert from_json == from_yaml
    assert from_json.spec_hash() == from_yaml.spec_hash()


def test_defaults() -> None:
    spec = load_one(spec_dict())
    assert spec.description == ""
    assert spec.transform.stdin == [] and spec.transform.env == {}
    assert spec.transform.image is None and spec.transform.err_cmd == []
    assert spec.parallelism_spec is None
    assert spec.datum_tries == 3
    assert spec.datum_timeout is None
    assert spec.output_branch == "master"
    assert spec.reprocess_spec == "until_success"
    assert spec.salt is None
    leaf = spec.input.pfs
    assert leaf is not None
    assert (leaf.branch, leaf.name, leaf.input_name) == ("master", None, "images")
    assert (leaf.join_on, leaf.outer_join, leaf.group_by) == (None, False, None)
    assert (leaf.lazy, leaf.empty_files) == (False, False)


def test_several_yaml_documents_and_a_trailing_separator() -> None:
    text = "pipeline: {name: a}\ntransform: {cmd: [x]}\ninput: {pfs: {repo: r, glob: /}}\n---\n"
    specs = load_specs(text + text.replace("name: a", "name: b"))
    assert [spec.name for spec in specs] == ["a", "b"]


def test_yaml_top_level_list() -> None:
    text = json.dumps([spec_dict("a"), spec_dict("b")])
    specs = load_specs("# yaml\n" + text)
    assert [spec.name for spec in specs] == ["a", "b"]


def test_json_array() -> None:
    specs = load_specs(json.dumps([spec_dict("a"), spec_dict("b"), spec_dict("c")]))
    assert [spec.name for spec in specs] == ["a", "b", "c"]


def test_concatenated_json_objects() -> None:
    text = json.dumps(spec_dict("a"), indent=2) + "\n" + json.dumps(spec_dict("b"))
    assert [spec.name for spec in load_specs(text)] == ["a", "b"]


def test_error_in_second_pipeline_names_its_field() -> None:
    bad = spec_dict("b")
    del bad["input"]["pfs"]["glob"]
    error = spec_error([spec_dict("a"), bad])
    assert error.field == "input.pfs.glob"
    assert error.problems == [("input.pfs.glob", "Field required")]


@pytest.mark.parametrize("kind", ["cross", "union"])
def test_cross_and_union(kind: str) -> None:
    spec = load_one(spec_dict(input={kind: [pfs("a"), pfs("b")]}))
    assert spec.input.kind == kind
    assert [child.kind for child in spec.input.children] == ["pfs", "pfs"]
    assert [leaf.repo for leaf in spec.input.pfs_inputs()] == ["a", "b"]


def test_join() -> None:
    children = [pfs("a", join_on="$1", outer_join=True), pfs("b", join_on="$1")]
    spec = load_one(spec_dict(input={"join": children}))
    assert spec.input.kind == "join"
    assert [leaf.outer_join for leaf in spec.input.pfs_inputs()] == [True, False]


def test_group() -> None:
    spec = load_one(spec_dict(input={"group": [pfs("a", group_by="$1"), pfs("b", group_by="$2")]}))
    assert spec.input.kind == "group"
    assert [leaf.group_by for leaf in spec.input.pfs_inputs()] == ["$1", "$2"]


def test_pfs_inputs_are_depth_first_in_order() -> None:
    tree = {"cross": [{"union": [pfs("a"), pfs("b", name="a")]}, pfs("c"), {"cross": [pfs("d")]}]}
    spec = load_one(spec_dict(input=tree))
    assert [leaf.repo for leaf in spec.input.pfs_inputs()] == ["a", "b", "c", "d"]
    assert spec.input.pfs is None
    assert isinstance(spec.input.children[0], Input)
    assert load_one(spec_dict()).input.children == []


@pytest.mark.parametrize(
    ("remove", "field"),
    [
        (("pipeline",), "pipeline"),
        (("pipeline", "name"), "pipeline.name"),
        (("transform",), "transform"),
        (("transform", "cmd"), "transform.cmd"),
        (("input",), "input"),
        (("input", "cross", 1, "pfs", "glob"), "input.cross[1].pfs.glob"),
        (("input", "cross", 1, "pfs", "repo"), "input.cross[1].pfs.repo"),
    ],
)
def test_missing_required_field(remove: tuple[Any, ...], field: str) -> None:
    data = spec_dict(input={"cross": [pfs("a"), pfs("b")]})
    parent: Any = data
    for key in remove[:-1]:
        parent = parent[key]
    del parent[remove[-1]]
    error = spec_error(data)
    assert error.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (spec_dict(colour="red"), "colour"),
        (spec_dict(transform={"cmd": ["x"], "shell": "sh"}), "transform.shell"),
        (spec_dict(input={"cross": [pfs("a"), pfs("b", blob="/*")]}), "input.cross[1].pfs.blob"),
        (spec_dict(input={"pfs": {"repo": "a", "glob": "/"}, "git": {}}), "input.git"),
    ],
)
def test_unknown_field(data: dict[str, Any], field: str) -> None:
    error = spec_error(data)
    assert error.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (spec_dict(datum_tries="x"), "datum_tries"),
        (spec_dict(datum_tries=0), "datum_tries"),
        (spec_dict(transform={"cmd": "python"}), "transform.cmd"),
        (spec_dict(transform={"cmd": []}), "transform.cmd"),
        (spec_dict(transform={"cmd": ["x"], "env": {"N": 1}}), "transform.env.N"),
        (spec_dict(parallelism_spec={"constant": 0}), "parallelism_spec.constant"),
        (spec_dict(reprocess_spec="sometimes"), "reprocess_spec"),
        (spec_dict(input=pfs("images", glob="*")), "input.pfs.glob"),
        (spec_dict(name="has space"), "pipeline.name"),
        (spec_dict(name="-leading-dash"), "pipeline.name"),
        (spec_dict(name="x" * 64), "pipeline.name"),
        (spec_dict(output_branch="a/b"), "output_branch"),
        (spec_dict(input=pfs("images", name="a b")), "input.pfs.name"),
    ],
)
def test_mistyped_or_invalid_field(data: dict[str, Any], field: str) -> None:
    error = spec_error(data)
    assert error.field == field


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (spec_dict(tf_job={"tf_job_spec": ""}), "tf_job"),
        (spec_dict(egress={"URL": "s3://b/x"}), "egress"),
        (
            spec_dict(input={"cross": [pfs("a"), {"pfs": {**pfs("b")["pfs"], "s3": True}}]}),
            "input.cross[1].pfs.s3",
        ),
        (spec_dict(input=pfs("images", s3=True)), "input.pfs.s3"),
        (
            spec_dict(transform={"cmd": ["x"], "dockerfile": {"path": "Dockerfile"}}),
            "transform.dockerfile",
        ),
    ],
)
def test_unsupported_pachyderm_field(data: dict[str, Any], field: str) -> None:
    error = spec_error(data)
    assert error.field == field
    assert [problem_field for problem_field, _ in error.problems] == [field]


def test_unsupported_field_set_to_null_counts_as_unset() -> None:
    assert load_one(spec_dict(tf_job=None)).name == "edges"


def test_every_problem_is_listed() -> None:
    error = spec_error(spec_dict(tf_job={}, datum_tries="x", colour="red"))
    assert {field for field, _ in error.problems} == {"tf_job", "datum_tries", "colour"}


@pytest.mark.parametrize(
    ("tree", "field"),
    [
        ({}, "input"),
        ({"pfs": {"repo": "a", "glob": "/"}, "union": [pfs("b")]}, "input"),
        ({"cross": [pfs("a"), {}]}, "input.cross[1]"),
        ({"cross": []}, "input.cross"),
        ({"group": []}, "input.group"),
    ],
)
def test_input_must_set_exactly_one_kind(tree: dict[str, Any], field: str) -> None:
    error = spec_error(spec_dict(input=tree))
    assert error.field == field


def test_join_child_must_be_pfs() -> None:
    tree = {"join": [{"cross": [pfs("a")]}, pfs("b", join_on="$1")]}
    error = spec_error(spec_dict(input=tree))
    assert error.field == "input.join[0]"


def test_duplicate_input_names() -> None:
    error = spec_error(spec_dict(input={"cross": [pfs("a"), pfs("b", name="a")]}))
    assert error.field == "input.cross[1].pfs.name"
    error = spec_error(spec_dict(input={"cross": [pfs("a", "/x"), pfs("a", "/y")]}))
    assert error.field == "input.cross[1].pfs.repo"


def test_same_name_allowed_under_union_but_not_across_a_cross() -> None:
    union = {"union": [pfs("a", "/x"), pfs("a", "/y")]}
    assert load_one(spec_dict(input=union)).input.kind == "union"
    error = spec_error(spec_dict(input={"cross": [union, pfs("a")]}))
    assert error.field == "input.cross[1].pfs.repo"


def test_renaming_resolves_a_duplicate() -> None:
    spec = load_one(spec_dict(input={"cross": [pfs("a", "/x"), pfs("a", "/y", name="a2")]}))
    assert [leaf.input_name for leaf in spec.input.pfs_inputs()] == ["a", "a2"]


@pytest.mark.parametrize(
    ("leaf", "field"),
    [(pfs("out"), "input.pfs.repo"), (pfs("images", name="out"), "input.pfs.name")],
)
def test_out_is_a_reserved_input_name(leaf: dict[str, Any], field: str) -> None:
    error = spec_error(spec_dict(input=leaf))
    assert error.field == field


def test_out_repo_is_fine_under_another_name() -> None:
    assert load_one(spec_dict(input=pfs("out", name="previous"))).input.pfs is not None


def test_pipeline_cannot_read_its_own_output() -> None:
    error = spec_error(spec_dict("edges", input={"cross": [pfs("images"), pfs("edges")]}))
    assert error.field == "input.cross[1].pfs.repo"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2h45m", 9900.0),
        ("1500us", 0.0015),
        ("1µs", 1e-6),
        ("250ns", 2.5e-7),
        ("90", 90.0),
        ("0.25", 0.25),
        (" 10s ", 10.0),
        ("2d", 172800.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text",
    ["", "s", "10x", "1m 30s", "1.2.3s", "inf", "nan", "1e3", "--1s", "-1m", "ten seconds"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("value", "seconds"), [("1m30s", 90.0), (45, 45.0), (2.5, 2.5)])
def test_datum_timeout_is_seconds(value: Any, seconds: float) -> None:
    assert load_one(spec_dict(datum_timeout=value)).datum_timeout == seconds


@pytest.mark.parametrize("value", ["0s", 0, -5, "soon", True, "-1s"])
def test_datum_timeout_must_be_a_positive_duration(value: Any) -> None:
    assert spec_error(spec_dict(datum_timeout=value)).field == "datum_timeout"


def test_spec_hash_ignores_key_order_and_follows_content() -> None:
    data = spec_dict(datum_tries=4, salt="s")
    reordered = dict(reversed(list(data.items())))
    base = load_one(data)
    assert load_one(reordered).spec_hash() == base.spec_hash()
    assert len(base.spec_hash()) == 64
    assert load_one({**data, "datum_tries": 5}).spec_hash() != base.spec_hash()
    assert load_one({**data, "salt": "t"}).spec_hash() != base.spec_hash()


def test_canonical_json_includes_defaults_and_sorts_keys() -> None:
    canonical = load_one(spec_dict()).canonical_json()
    decoded = json.loads(canonical)
    assert decoded["datum_tries"] == 3 and decoded["output_branch"] == "master"
    assert list(decoded) == sorted(decoded)
    assert " " not in canonical


@pytest.mark.parametrize("text", ["", "   \n", "---\n", "# only a comment\n"])
def test_empty_document(text: str) -> None:
    with pytest.raises(SpecError):
        load_specs(text)


@pytest.mark.parametrize("text", ["just a string", "- 1\n- 2\n", "[1]", "{} 5"])
def test_non_mapping_document(text: str) -> None:
    with pytest.raises(SpecError):
        load_specs(text)


@pytest.mark.parametrize("text", ['{"pipeline": ', "pipeline: [unclosed\n", "a: b: c\n"])
def test_syntax_errors(text: str) -> None:
    with pytest.raises(SpecError):
        load_specs(text)


def test_load_spec_file(tmp_path: Any) -> None:
    path = tmp_path / "edges.yaml"
    path.write_text(FULL_YAML, encoding="utf-8")
    (spec,) = load_spec_file(path)
    assert spec.name == "edges"
    broken = tmp_path / "broken.json"
    broken.write_bytes(b"\xff\xfe{")
    with pytest.raises(SpecError):
        load_spec_file(broken)


def test_parse_spec_takes_a_decoded_mapping() -> None:
    assert parse_spec(spec_dict()).name == "edges"
    with pytest.raises(SpecError):
        parse_spec(["not", "a", "mapping"])


def test_spec_error_is_part_of_the_hierarchy() -> None:
    assert issubclass(SpecError, PipelineError)
    assert issubclass(SpecError, CairnError)


def test_models_are_frozen() -> None:
    spec = load_one(spec_dict())
    with pytest.raises(pydantic.ValidationError):
        spec.datum_tries = 9  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        PFSInput(repo="a", glob="/", extra_thing=1)  # type: ignore[call-arg]


# -- limits: one parse path for what create stores and what reads it back -----------------------
def nested(depth: int, kind: str = "cross") -> dict[str, Any]:
    node = pfs("images")
    for _ in range(depth):
        node = {kind: [node]}
    return node


@pytest.mark.parametrize("kind", ["cross", "union"])
def test_inputs_may_nest_up_to_the_limit_and_read_back(kind: str) -> None:
    spec = load_one(spec_dict(input=nested(MAX_INPUT_DEPTH, kind)))

    assert read_spec(spec.canonical_json()) == spec


@pytest.mark.parametrize("depth", [MAX_INPUT_DEPTH + 1, 150])
def test_inputs_nested_past_the_limit_are_refused_with_their_path(depth: int) -> None:
    # 150: the spec, which create accepted and nothing could read back.
    error = spec_error(spec_dict(input=nested(depth)))

    assert error.field.startswith("input" + ".cross[0]" * MAX_INPUT_DEPTH + ".cross")


def test_the_input_depth_limit_holds_for_a_decoded_mapping_too() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec_dict(input=nested(10_000)))
    assert info.value.field == "input" + ".cross[0]" * MAX_INPUT_DEPTH + ".cross"


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000,
        '{"a":' * 10_000,
        "[" * 10_000 + "]" * 10_000,
        "a: " + "[" * 10_000,
        "a:\n" + "".join(" " * (i + 1) + "- \n" for i in range(1000)),
        "a:\n" + "".join(" " * (i + 1) + "b:\n" for i in range(1000)),
    ],
    ids=[
        "json-lists",
        "json-objects",
        "json-closed",
        "yaml-flow",
        "yaml-block-lists",
        "yaml-block",
    ],
)
def test_deeply_nested_documents_are_a_spec_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(SpecError) as info:
        load_specs(text)
    assert info.value.field  # where the document got too deep


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_documents_nest_up_to_the_limit_and_no_further(syntax: str) -> None:
    def document(lists: int) -> str:
        # The outer mapping is one level; then ``lists`` lists.
        value = "[" * lists + "]" * lists
        return f'{{"pipeline": {value}}}' if syntax == "json" else f"pipeline: {value}\n"

    with pytest.raises(SpecError) as decoded:
        load_specs(document(MAX_NESTING - 1))
    with pytest.raises(SpecError) as too_deep:
        load_specs(document(MAX_NESTING))

    assert decoded.value.field == "pipeline"  # decoded, then refused: not a mapping
    assert too_deep.value.field == "pipeline" + "[0]" * (MAX_NESTING - 1)


def test_yaml_aliases_cannot_expand_a_small_document_into_a_huge_one() -> None:
    laughs = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n" for i in range(1, 9)
    )
    assert len(laughs) < 1000

    with pytest.raises(SpecError, match=str(MAX_VALUES)):
        load_specs(laughs)


def test_a_spec_larger_than_the_limit_is_refused(tmp_path: Any) -> None:
    big = spec_dict(description="x" * MAX_SPEC_BYTES)
    with pytest.raises(SpecError):
        load_specs(json.dumps(big))
    path = tmp_path / "big.json"
    path.write_text(json.dumps(big))
    with pytest.raises(SpecError):
        load_spec_file(path)


def test_a_stored_spec_past_the_limits_does_not_read_back() -> None:
    fits = load_one(spec_dict(description="x" * (MAX_SPEC_BYTES // 2)))
    # Built without the loader, as code could: its stored form is over the size limit.
    too_big = PipelineSpec.model_validate(spec_dict(description="é" * MAX_SPEC_BYTES))

    assert read_spec(fits.canonical_json()) == fits
    with pytest.raises(SpecError):
        read_spec(too_big.canonical_json())
    with pytest.raises(SpecError):
        read_spec(json.dumps([spec_dict(), spec_dict(name="other")]))


# -- transform.secrets --------------------------------------------------------------------------
def with_secrets(*secrets: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    transform = {"cmd": ["python", "/edges.py"], "secrets": list(secrets), "env": env or {}}
    return {**spec_dict(), "transform": transform}


def test_transform_secrets_are_references_by_name_key_and_env_var() -> None:
    spec = load_one(with_secrets({"name": "aws", "key": "token", "env_var": "AWS_TOKEN"}))

    (secret,) = spec.transform.secrets
    assert (secret.name, secret.key, secret.env_var) == ("aws", "token", "AWS_TOKEN")
    assert read_spec(spec.canonical_json()) == spec


@pytest.mark.parametrize(
    ("secret", "env", "field"),
    [
        ({"name": "aws", "mount_path": "/var/secrets"}, {}, "transform.secrets[0].mount_path"),
        ({"name": "aws", "env_var": "TOKEN"}, {}, "transform.secrets[0].key"),
        ({"name": "aws", "key": "token"}, {}, "transform.secrets[0].env_var"),
        ({"name": "aws", "key": "token", "env_var": "1X"}, {}, "transform.secrets[0].env_var"),
        ({"name": "aws", "key": "t", "env_var": "CAIRN_PFS"}, {}, "transform.secrets[0].env_var"),
        ({"name": "aws", "key": "a b", "env_var": "X"}, {}, "transform.secrets[0].key"),
        ({"name": "aws", "key": "t", "env_var": "X"}, {"X": "1"}, "transform.secrets[0].env_var"),
    ],
    ids=["mount_path", "no-key", "no-env_var", "bad-env", "reserved-env", "bad-key", "env-clash"],
)
def test_bad_transform_secrets_are_refused_with_their_path(
    secret: dict[str, Any], env: dict[str, str], field: str
) -> None:
    assert spec_error(with_secrets(secret, env=env)).field == field


def test_two_secrets_cannot_set_one_variable() -> None:
    twice = {"name": "aws", "key": "token", "env_var": "TOKEN"}
    assert spec_error(with_secrets(twice, twice)).field == "transform.secrets[1].env_var"
