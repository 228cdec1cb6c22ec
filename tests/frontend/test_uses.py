"""``fdg.frontend.uses``: loading ``use "other.fdg"`` files, each file's scope, and the errors of missing files,
cycles of uses and name clashes (every file is written under ``tmp_path``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

import fdg
from fdg import api
from fdg.errors import FdgTypeError, Source
from fdg.frontend import uses

DOUBLE = "diagram Double() { input x : 0e + 1o\n output y = 2 * x }\n"
HALF = "diagram Half() { input x : 0e + 1o\n output y = 0.5 * x }\n"


def write(folder: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


def load(path: Path) -> uses.Library:
    return api.library(path)


def root_scope(lib: uses.Library) -> dict[str, str | None]:
    return {k: (d.use.path if d.use else None) for k, d in lib.scope(lib.root.span.source).items()}


def error(path: Path) -> FdgTypeError:
    with pytest.raises(FdgTypeError) as err:
        load(path)
    return err.value


def test_used_diagrams_join_the_scope(tmp_path: Path) -> None:
    write(tmp_path, {"lib/double.fdg": DOUBLE, "main.fdg": 'use "lib/double.fdg"\n' + HALF})
    lib = load(tmp_path / "main.fdg")
    assert root_scope(lib) == {"Half": None, "Double": "lib/double.fdg"}
    # the files read, the root first, each with its text (the cache key of a compilation)
    assert [(Path(name).name, text) for name, text in lib.files] == [
        ("main.fdg", 'use "lib/double.fdg"\n' + HALF),
        ("double.fdg", DOUBLE),
    ]


def test_a_used_diagram_is_callable(tmp_path: Path) -> None:
    write(tmp_path, {"double.fdg": DOUBLE, "main.fdg": 'use "double.fdg"\n'
                     "diagram M() { input x : 0e + 1o\n output y = Double()(x) + x }"})  # fmt: skip
    module = fdg.compile(tmp_path / "main.fdg").double()
    x = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(module(x), 2 * x + x, rtol=0, atol=0)


def test_use_is_not_transitive(tmp_path: Path) -> None:
    """main uses mid, mid uses base: main sees mid's diagrams, not base's; mid sees base's."""
    write(tmp_path, {"base.fdg": DOUBLE, "mid.fdg": 'use "base.fdg"\n' + HALF, "main.fdg": 'use "mid.fdg"\n'})
    lib = load(tmp_path / "main.fdg")
    assert root_scope(lib) == {"Half": "mid.fdg"}
    (mid,) = [s for s in lib.scopes if s.name.endswith("mid.fdg")]
    assert {k: (d.use.path if d.use else None) for k, d in lib.scope(mid).items()} == {
        "Half": None,
        "Double": "base.fdg",
    }
    assert len(lib.files) == 3


def test_paths_are_relative_to_the_using_file(tmp_path: Path) -> None:
    write(tmp_path, {"a/b.fdg": 'use "../c/d.fdg"\n' + HALF, "c/d.fdg": DOUBLE, "main.fdg": 'use "a/b.fdg"\n'})
    lib = load(tmp_path / "main.fdg")
    assert sorted(Path(name).relative_to(tmp_path).as_posix() for name, _ in lib.files) == [
        "a/b.fdg",
        "c/d.fdg",
        "main.fdg",
    ]


def test_one_file_reached_twice_is_read_once(tmp_path: Path) -> None:
    """A diamond (main uses left and right, both use base) and two spellings of one path are no clash."""
    write(tmp_path, {"base.fdg": DOUBLE, "left.fdg": 'use "base.fdg"\n', "right.fdg": 'use "./base.fdg"\n',
                     "main.fdg": 'use "left.fdg"\nuse "right.fdg"\nuse "base.fdg"\nuse "./base.fdg"\n'})  # fmt: skip
    lib = load(tmp_path / "main.fdg")
    assert root_scope(lib) == {"Double": "./base.fdg"}  # the last use that brought it
    assert sorted(Path(name).name for name, _ in lib.files) == ["base.fdg", "left.fdg", "main.fdg", "right.fdg"]


def test_missing_file(tmp_path: Path) -> None:
    write(tmp_path, {"main.fdg": HALF + 'use "nowhere.fdg"\n'})
    err = error(tmp_path / "main.fdg")
    assert err.message == f"cannot use {tmp_path / 'nowhere.fdg'}: no such file"
    assert err.hint == f"a `use` path is relative to the directory of {tmp_path / 'main.fdg'}"
    assert err.span is not None and (err.span.line, err.span.column) == (3, 1)


def test_missing_file_from_source_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Source text given as a string resolves ``use`` from the current directory."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FdgTypeError) as err:
        api.library('use "gone.fdg"\n' + HALF)
    assert err.value.message == "cannot use gone.fdg: no such file"
    assert err.value.hint == "a `use` path is relative to the current directory, for source text given as a string"
    write(tmp_path, {"gone.fdg": DOUBLE})
    assert "Double" in root_scope(api.library('use "gone.fdg"\n' + HALF))


def test_missing_file_inside_a_used_file_is_noted_at_the_use(tmp_path: Path) -> None:
    write(tmp_path, {"lib.fdg": 'use "missing.fdg"\n', "main.fdg": '\nuse "lib.fdg"\n'})
    err = error(tmp_path / "main.fdg")
    assert err.span is not None and err.span.source.name == str(tmp_path / "lib.fdg")
    (note,) = err.diagnostic.notes
    assert note.message == f"in {tmp_path / 'lib.fdg'}, used here"
    assert note.span is not None and (note.span.source.name, note.span.line) == (str(tmp_path / "main.fdg"), 2)


def test_cycle_of_uses(tmp_path: Path) -> None:
    write(tmp_path, {"a.fdg": 'use "b.fdg"\n' + DOUBLE, "b.fdg": 'use "c.fdg"\n', "c.fdg": 'use "a.fdg"\n'})
    err = error(tmp_path / "a.fdg")
    a, b, c = (tmp_path / f"{n}.fdg" for n in "abc")
    assert err.message == f"cycle of `use`: {a} -> {b} -> {c} -> {a}"
    assert err.span is not None and err.span.source.name == str(c)
    assert [n.message for n in err.diagnostic.notes] == [f"in {c}, used here", f"in {b}, used here"]


def test_a_file_using_itself(tmp_path: Path) -> None:
    write(tmp_path, {"a.fdg": DOUBLE + 'use "a.fdg"\n'})
    path = tmp_path / "a.fdg"
    assert error(path).message == f"cycle of `use`: {path} -> {path}"


def test_a_relative_root_keeps_its_name_in_messages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, {"a.fdg": 'use "b.fdg"\n', "b.fdg": 'use "a.fdg"\n'})
    assert error(Path("a.fdg")).message == "cycle of `use`: a.fdg -> b.fdg -> a.fdg"


def test_clash_with_an_own_diagram(tmp_path: Path) -> None:
    write(tmp_path, {"lib.fdg": DOUBLE, "main.fdg": DOUBLE + 'use "lib.fdg"\n'})
    err = error(tmp_path / "main.fdg")
    assert err.message == (
        f'use "lib.fdg" brings a second diagram named Double: {tmp_path / "lib.fdg"}:1:9 and '
        f"{tmp_path / 'main.fdg'}:1:9 (defined in this file)"
    )
    assert err.hint == "a name means one diagram in a file; rename one of them"
    assert err.span is not None and err.span.line == 3


def test_clash_between_two_used_files(tmp_path: Path) -> None:
    write(tmp_path, {"one.fdg": DOUBLE, "two.fdg": "\n" + DOUBLE, "main.fdg": 'use "one.fdg"\nuse "two.fdg"\n'})
    err = error(tmp_path / "main.fdg")
    assert err.message == (
        f'use "two.fdg" brings a second diagram named Double: {tmp_path / "two.fdg"}:2:9 and '
        f'{tmp_path / "one.fdg"}:1:9 (from use "one.fdg" at line 1)'
    )


def test_duplicate_diagram_in_one_file(tmp_path: Path) -> None:
    write(tmp_path, {"main.fdg": DOUBLE + DOUBLE})
    err = error(tmp_path / "main.fdg")
    assert (err.message, err.hint) == (
        "diagram Double is already defined at line 1",
        "give each diagram of a file its own name",
    )
    assert err.span is not None and (err.span.line, err.span.column) == (3, 9)


def test_syntax_error_in_a_used_file(tmp_path: Path) -> None:
    write(tmp_path, {"bad.fdg": "diagram {", "main.fdg": 'use "bad.fdg"\n'})
    with pytest.raises(fdg.FdgError) as err:
        load(tmp_path / "main.fdg")
    assert err.value.span is not None and err.value.span.source.name == str(tmp_path / "bad.fdg")
    assert [n.message for n in err.value.diagnostic.notes] == [f"in {tmp_path / 'bad.fdg'}, used here"]


def test_libraries_are_equal_by_their_files(tmp_path: Path) -> None:
    """Equal when the same files hold the same text; editing a used file makes a new library."""
    write(tmp_path, {"lib.fdg": DOUBLE, "main.fdg": 'use "lib.fdg"\n'})
    first, again = load(tmp_path / "main.fdg"), load(tmp_path / "main.fdg")
    assert first == again and hash(first) == hash(again)
    write(tmp_path, {"lib.fdg": DOUBLE.replace("2 *", "3 *")})
    assert load(tmp_path / "main.fdg") != first


def test_load_from_a_parsed_program() -> None:
    lib = uses.load(uses.parsed(Source(uses.STRING, DOUBLE + HALF)))
    assert root_scope(lib) == {"Double": None, "Half": None}
    assert lib.files == ((uses.STRING, DOUBLE + HALF),)
    assert uses.parsed(Source(uses.STRING, DOUBLE)) is uses.parsed(Source(uses.STRING, DOUBLE))  # parsed once


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "dir.fdg").mkdir()
    write(tmp_path, {"main.fdg": 'use "dir.fdg"\n'})
    message = error(tmp_path / "main.fdg").message
    assert message.startswith(f"cannot read {tmp_path / 'dir.fdg'}: ")
    assert os.path.isdir(tmp_path / "dir.fdg")
