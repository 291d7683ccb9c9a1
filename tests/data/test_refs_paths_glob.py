"""pachctl's reference syntax, repo path rules and Pachyderm glob patterns."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cairn.data import InvalidPath, InvalidReference, Ref, parse_ref
from cairn.data.glob import compile_glob, expand_groups
from cairn.data.paths import display, join, normalize, parent_and_name
from cairn.data.refs import check_name

COMMIT_ID = "3f2a" + "0" * 27 + "b"

# -- references ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("images", Ref("images")),
        ("images@master", Ref("images", "master")),
        ("images@master^", Ref("images", "master", 1)),
        ("images@master^1", Ref("images", "master", 1)),
        ("images@master^2", Ref("images", "master", 2)),
        ("images@master~3", Ref("images", "master", 3)),
        ("images@master^^", Ref("images", "master", 2)),
        ("images@master^^^", Ref("images", "master", 3)),
        ("images@master~", Ref("images", "master", 1)),
        ("images@master^~2", Ref("images", "master", 3)),
        ("images@master^0", Ref("images", "master", 0)),
        (f"images@{COMMIT_ID}", Ref("images", COMMIT_ID)),
        (f"images@{COMMIT_ID}^", Ref("images", COMMIT_ID, 1)),
        ("images@master:/a/b.png", Ref("images", "master", 0, "a/b.png")),
        ("images@master^2:/a/b.png", Ref("images", "master", 2, "a/b.png")),
        ("images@master:a/b.png", Ref("images", "master", 0, "a/b.png")),
        ("images@master:/", Ref("images", "master", 0, "")),
        ("images@master:", Ref("images", "master", 0, "")),
        ("images:/a//b/", Ref("images", None, 0, "a/b")),
        ("images@master:/a:b", Ref("images", "master", 0, "a:b")),
        ("my-repo_2.v1@feature-x", Ref("my-repo_2.v1", "feature-x")),
    ],
)
def test_parse_ref(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@master",
        "images@",
        "images@:/a",
        "images@master^x",
        "images@master^2x",
        "bad name",
        "-images",
        ".images",
        "images.lock",
        "im/ages",
        "a" * 256,
    ],
)
def test_parse_ref_rejects_malformed_references(text: str) -> None:
    with pytest.raises(InvalidReference):
        parse_ref(text)


@pytest.mark.parametrize(
    "text", ["images@master:/../etc", "images:/a/./b", "images@master:/a\x00b"]
)
def test_parse_ref_rejects_bad_paths(text: str) -> None:
    with pytest.raises(InvalidPath):
        parse_ref(text)


def test_ref_parse_with_no_commitish_is_the_default_branch() -> None:
    assert Ref.parse("images", None) == Ref("images")
    assert Ref.parse("images", "dev^2") == Ref("images", "dev", 2)


@pytest.mark.parametrize("name", ["a", "A9", "0", "a.b-c_d", "x" * 255, "locked", "a.locks"])
def test_check_name_accepts(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "_a", "-a", ".a", "a b", "a/b", "a@b", "a:b", "é", "x" * 256, "a.lock"]
)
def test_check_name_rejects(name: str) -> None:
    with pytest.raises(InvalidReference):
        check_name(name, "branch")


names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,15}", fullmatch=True).filter(
    lambda n: not n.endswith(".lock")
)
path_parts = st.from_regex(r"[A-Za-z0-9_. :@^~-]{1,8}", fullmatch=True).filter(
    lambda p: p not in (".", "..")
)
repo_paths = st.lists(path_parts, max_size=4).map("/".join)


@settings(max_examples=100, deadline=None)
@given(
    repo=names,
    commit=st.none() | names,
    ancestry=st.integers(min_value=0, max_value=20),
    path=st.none() | repo_paths,
)
def test_ref_round_trips_through_str(
    repo: str, commit: str | None, ancestry: int, path: str | None
) -> None:
    ref = Ref(repo, commit, ancestry if commit else 0, path)

    assert parse_ref(str(ref)) == ref


# -- paths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a/b.png", "a/b.png"),
        ("/a/b.png", "a/b.png"),
        ("//a//b.png", "a/b.png"),
        ("a/b/", "a/b"),
        ("/", ""),
        ("", ""),
        ("...", "..."),
        (".hidden/..x", ".hidden/..x"),
        ("a b/c:d", "a b/c:d"),
    ],
)
def test_normalize(path: str, expected: str) -> None:
    assert normalize(path) == expected


@pytest.mark.parametrize(
    "path", ["..", "/..", "a/../b", "../a", ".", "./a", "a/.", "/a/./b", "a\x00b", "\x00"]
)
def test_normalize_refuses_paths_leaving_the_repo(path: str) -> None:
    with pytest.raises(InvalidPath) as info:
        normalize(path)

    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("path", ["", "/", "//"])
def test_normalize_refuses_the_root_where_a_file_is_needed(path: str) -> None:
    with pytest.raises(InvalidPath):
        normalize(path, allow_root=False)


@settings(max_examples=100, deadline=None)
@given(path=st.text(st.sampled_from("ab/."), max_size=12))
def test_normalize_is_idempotent_and_display_round_trips(path: str) -> None:
    try:
        norm = normalize(path)
    except InvalidPath:
        return

    assert normalize(norm) == norm
    assert normalize(display(norm)) == norm
    assert not norm.startswith("/") and not norm.endswith("/") and "//" not in norm


def test_join_display_and_parent_and_name() -> None:
    assert join("a", "", "b/c") == "a/b/c"
    assert join("", "") == ""
    assert display("a/b") == "/a/b"
    assert display("") == "/"
    assert parent_and_name("a/b/c") == ("a/b", "c")
    assert parent_and_name("c") == ("", "c")


# -- globs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "matches", "misses"),
    [
        ("/", [""], ["a", "a/b"]),
        ("/*", ["a", "b.png", ".hidden"], ["a/b", "a/b/c"]),
        ("*", ["a"], ["a/b"]),
        ("/**", ["a", "a/b", "a/b/c.png"], []),
        ("/*/*", ["a/b", "x/y.png"], ["a", "a/b/c"]),
        ("/a/*", ["a/b", "a/c.txt"], ["a", "b/c", "a/b/c"]),
        ("a/*", ["a/b"], ["b/c"]),
        ("/**/*.csv", ["a.csv", "x/a.csv", "x/y/a.csv"], ["a.csvx", "x/a.txt"]),
        ("/x/**", ["x/a", "x/a/b"], ["y/a", "xa"]),
        ("/a?c", ["abc", "a.c"], ["ac", "abbc", "a/c"]),
        ("/[abc].txt", ["a.txt", "c.txt"], ["d.txt", "ab.txt", ".txt"]),
        ("/[a-c]", ["b"], ["d"]),
        ("/[!a].txt", ["b.txt", "z.txt"], ["a.txt", "bb.txt"]),
        ("/*.{png,jpg}", ["x.png", "x.jpg", ".png"], ["x.gif", "x.pngx", "d/x.png"]),
        ("/{train,test}/*", ["train/a", "test/b"], ["val/a", "train"]),
        ("/a.b", ["a.b"], ["axb"]),
        ("/a+b", ["a+b"], ["aab"]),
        ("/a,b", ["a,b"], ["a"]),
        ("/a)b", ["a)b"], []),
        ("/a}b", ["a}b"], []),
        ("/(*)/(*).png", ["cats/1.png"], ["cats/1.jpg", "1.png"]),
    ],
)
def test_compile_glob(pattern: str, matches: list[str], misses: list[str]) -> None:
    regex = compile_glob(pattern)

    assert [p for p in matches if regex.match(p)] == matches
    assert [p for p in misses if regex.match(p)] == []


@pytest.mark.parametrize("pattern", ["/[abc", "/[!", "/{a,b", "/(a", "/((a)", "/{a,{b}"])
def test_unbalanced_globs_raise_invalid_path(pattern: str) -> None:
    with pytest.raises(InvalidPath):
        compile_glob(pattern)


@pytest.mark.parametrize("pattern", ["/[]", "/[!]", "/[z-a]"])
def test_malformed_classes_raise_invalid_path(pattern: str) -> None:
    with pytest.raises(InvalidPath):
        compile_glob(pattern)


@pytest.mark.parametrize(
    ("pattern", "path", "template", "expected"),
    [
        ("/(*)/(*).png", "cats/1.png", "$1", "cats"),
        ("/(*)/(*).png", "cats/1.png", "$2-$1", "1-cats"),
        ("/(*)/(*).png", "cats/1.png", "$3", ""),
        ("/*/(*)_(*).csv", "d/2024_sales.csv", "$2/$1", "sales/2024"),
        ("/({a,b})*", "bcd", "[$1]", "[b]"),
        ("/**", "x/y", "$1", ""),
        ("/(*)", "x", "no groups", "no groups"),
    ],
)
def test_expand_groups(pattern: str, path: str, template: str, expected: str) -> None:
    match = compile_glob(pattern).match(path)

    assert match is not None
    assert expand_groups(template, match) == expected
