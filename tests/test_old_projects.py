"""Projects as old hosts left them: found by the dry run, repaired at start, one
failure stopping no other project. Real Trac 1.6, real trac.ini files."""

from __future__ import annotations

import configparser
import os
import re
import shutil
from pathlib import Path

import pytest
from old_host import host_brz
from old_trac import (
    add_failing_plugin,
    add_python2_egg,
    database_version,
    enable_missing_plugins,
    log_to_missing_file,
    make_old_environment,
    make_tracbzr,
    repeat_option,
    repeat_section,
    tree_digest,
    windows_paths,
)

from trac_breezy.admin import ini_repair, migrate, old_projects
from trac_breezy.admin.findings import Action
from trac_breezy.container import paths, settings
from trac_breezy.container.settings import Settings


def values(parent: Path, bzr_root: Path) -> Settings:
    return settings.load({"TRAC_ENV_PARENT_DIR": str(parent), "BZR_ROOT": str(bzr_root)})


def opens(env_path: Path) -> object:
    """Trac 1.6 opens the project (returns it), or raises what it raised."""
    from trac.env import Environment

    env = Environment(str(env_path))
    env.shutdown()
    return env


def append_ini(env_path: Path, text: str) -> None:
    with open(env_path / "conf" / "trac.ini", "a", encoding="utf-8") as ini:
        ini.write(text)


def ini_copies(env_path: Path) -> list[Path]:
    return sorted((env_path / "conf").glob("trac.ini.repair-*.bak"))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "bzr"
    root.mkdir()
    return root


def test_repeated_option_as_trac_1_0_left_it(tmp_path, tree, capsys):
    """Python 2 took the last value of a repeated option; Trac 1.6 refuses the file."""
    env = tmp_path / "logo"
    make_old_environment(env)
    ini = env / "conf" / "trac.ini"
    text = ini.read_text(encoding="utf-8")
    logo = text.index("[header_logo]")
    height = text.index("height = ", logo)
    ini.write_text(text[:height] + "# the old logo\nheight = 50\n" + text[height:])
    original = ini.read_bytes()
    with pytest.raises(configparser.DuplicateOptionError, match="option 'height' in section"):
        opens(env)
    planned = old_projects.plan(env, tree)
    assert planned.ini is not None
    assert "# the old logo" in planned.ini.render()  # comments kept (Trac's upgrade drops them)

    assert migrate.open_projects(values(tmp_path, tree)) == {}

    from trac.env import Environment

    trac = Environment(str(env))
    assert trac.config.get("header_logo", "height") == "-1"  # the last, as Python 2 read it
    trac.shutdown()
    (copy,) = ini_copies(env)
    assert copy.read_bytes() == original
    err = capsys.readouterr().err
    assert (
        "logo: repaired conf/trac.ini ([header_logo] height set twice, kept the last ('-1')" in err
    )
    assert copy.name in err


def test_missing_log_folder_windows_log_and_tracbzr(tmp_path, tree, capsys):
    logs = tmp_path / "logs"
    make_old_environment(logs)
    append_ini(logs, "\n[logging]\nlog_type = file\nlog_file = trac.log\n")
    shutil.rmtree(logs / "log", ignore_errors=True)  # hosts rarely back it up
    windows = tmp_path / "windows"
    make_old_environment(windows)
    append_ini(windows, "\n[logging]\nlog_type = winlog\n")
    bzr = tmp_path / "bzrproject"
    make_old_environment(bzr)
    append_ini(
        bzr,
        f"\n[components]\ntracbzr.* = enabled\n\n[repositories]\n.dir = {tree}\n.type = bzr\n",
    )
    for env in (logs, windows):
        with pytest.raises(Exception):  # noqa: B017 - whatever Trac raises, it does not open
            opens(env)

    assert migrate.open_projects(values(tmp_path, tree)) == {}

    for env in (logs, windows, bzr):
        opens(env)
    assert (logs / "log").is_dir()
    assert "log_type = stderr" in (windows / "conf" / "trac.ini").read_text()
    text = (bzr / "conf" / "trac.ini").read_text()
    assert "tracbzr" not in text and "trac_breezy.* = enabled" in text
    assert ini_copies(windows) and ini_copies(bzr)
    err = capsys.readouterr().err
    assert "logs: made log/" in err
    assert "the Windows event log is not here" in err
    assert "TracBzr's tracbzr.*: this image's Bazaar backend enabled" in err


def test_one_broken_project_is_not_served_and_says_why(tmp_path, tree, capsys):
    good, garbled, failing = tmp_path / "good", tmp_path / "garbled", tmp_path / "failing"
    for env in (good, garbled, failing):
        make_old_environment(env)
    append_ini(garbled, "\nthis line is no option\n")
    add_failing_plugin(failing)
    before = {env.name: tree_digest(env) for env in (garbled, failing)}

    unserved = migrate.open_projects(values(tmp_path, tree))

    assert sorted(unserved) == ["failing", "garbled"]
    assert "is no option" in unserved["garbled"] and "fix it by hand" in unserved["garbled"]
    assert "restored from" in unserved["failing"]
    assert database_version(good) == 45
    for env in (garbled, failing):
        assert tree_digest(env) == before[env.name]  # left as mounted


def test_dry_run_says_everything_and_writes_nothing(tmp_path, tree):
    env = tmp_path / "old"
    make_old_environment(env)
    append_ini(
        env,
        "\n[header_logo]\nheight = -1\nheight = 50\n\n[logging]\nlog_type = file\n"
        "\n[components]\ntracbzr.* = enabled\n\n[repositories]\n"
        "code.dir = C:\\repos\\code\ncode.type = git\nold.dir = /home/bzr/old\nold.type = bzr\n",
    )
    shutil.rmtree(env / "log")
    current = tmp_path / "current"
    make_old_environment(current)
    before = tree_digest(tmp_path)

    lines = [f.line() for f in migrate.check(values(tmp_path, tree))]

    assert tree_digest(tmp_path) == before
    assert not (env / "log").exists()
    text = "\n".join(lines)
    assert "project old: repair: conf/trac.ini: [header_logo] written twice, merged" in text
    assert "[header_logo] height set 3 times, kept the last ('50')" in text
    assert "project old: repair: log/ is missing: made empty" in text
    assert "TracBzr's tracbzr.*: this image's Bazaar backend enabled" in text
    assert "project old: skip: repository code is at C:\\repos\\code, a Windows path" in text
    assert "project old: skip: repository old is at /home/bzr/old, which is not in" in text
    assert "project old: upgrade: database version 43, Trac 1.6 needs 45" in text


def test_front_page_record(tmp_path, tree, monkeypatch):
    errors = tmp_path / "project-errors.json"
    monkeypatch.setattr(paths, "PROJECT_ERRORS", errors)
    from trac_breezy.trac_app.front import projects

    migrate.record_unserved(values(tmp_path, tree), {"x": "conf/trac.ini: line 3; fix it"})
    assert projects.start_errors(str(errors)) == {"x": "conf/trac.ini: line 3; fix it"}


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (b"\xef\xbb\xbf[trac]\nbase_url = x\n", "was UTF-8 with a byte-order mark, now UTF-8"),
        ("[project]\nname = Projetos Arduíno\n".encode("cp1252"), "was Windows-1252, now UTF-8"),
        (b"[a]\nx = 1\n[b]\ny = 2\n[a]\nz = 3\n", "[a] written twice, merged"),
        # an empty first [components]: once the second joined it, the two
        # compared equal and the wrong one was dropped, the third's lines with it
        (
            b"[components]\n[components]\nx.* = enabled\n[components]\ny = on\n",
            "[components] written twice, merged",
        ),
    ],
)
def test_ini_text_repairs_keep_every_value(raw, said):
    ini, changes = ini_repair.repaired(raw)
    assert said in changes
    parser = ini_repair.strict_parser()
    parser.read_string(ini.render())  # Trac 1.6 reads it
    lenient = ini_repair.lenient_parser()
    lenient.read_string(ini_repair.decode(raw)[0])
    assert ini_repair.values(parser) == ini_repair.values(lenient)


def test_clean_project_has_nothing_to_do(tmp_path, tree):
    env = tmp_path / "clean"
    make_old_environment(env)
    planned = old_projects.plan(env, tree)
    assert planned.ini is None and not planned.folders and not planned.refused
    assert all(f.action is not Action.REPAIR for f in planned.findings)


def test_an_old_host_moves_in(tmp_path, tree, capsys):
    """The issue's host: Trac 1.0 from Windows logging to a log/ never copied,
    with a git repository and AccountManager; Trac 1.0 with a repeated option;
    Trac 1.2 with XML-RPC and a repeated section; Trac 0.12 served by TracBzr
    with a Python 2 egg. Every one is served, none by hand."""
    branch = tree / "arduino" / "trunk"
    host_brz("init", "--format=pack-0.92", "--create-prefix", str(branch))
    (branch / "README").write_text("old\n")
    host_brz("add", cwd=branch)
    host_brz("commit", "-m", "from the old host", cwd=branch)
    arduino, svn, rpc, tracbzr = (tmp_path / n for n in ("arduino", "svn", "rpc", "tracbzr"))
    make_old_environment(arduino, version=29)
    windows_paths(arduino)
    enable_missing_plugins(arduino)
    log_to_missing_file(arduino)
    make_old_environment(svn, version=29)
    repeat_option(svn)
    make_old_environment(rpc, version=41)
    enable_missing_plugins(rpc)
    repeat_section(rpc)
    make_old_environment(tracbzr, version=26)
    make_tracbzr(tracbzr, str(branch))
    add_python2_egg(tracbzr)

    assert migrate.open_projects(values(tmp_path, tree)) == {}

    for env in (arduino, svn, rpc, tracbzr):
        assert database_version(env) == 45
        opens(env)
    from trac.env import Environment
    from trac.versioncontrol.api import RepositoryManager

    import trac_breezy.trac_app.bzr.connector  # noqa: F401 - the image loads it by entry point

    env = Environment(str(tracbzr))
    try:
        repos = RepositoryManager(env).get_repository("")
        assert repos is not None
        assert repos.get_changeset(repos.youngest_rev).message == "from the old host"
    finally:
        env.shutdown()
    err = capsys.readouterr().err
    assert "arduino: made log/" in err
    assert "tracbzr: repaired conf/trac.ini (TracBzr's tracbzr.*" in err


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[a]\nx = 1\nno option here\n", "line 3 is no option: 'no option here'"),
        (b"[a]\n[b\nx = 1\n", "line 2 is no option: '[b'"),
        (b"x = 1\n[a]\n", "line 1 comes before any [section]"),
    ],
)
def test_what_python_2_could_not_read_either_is_refused(raw, message):
    with pytest.raises(ini_repair.IniError, match=re.escape(message)):
        ini_repair.repaired(raw)


def no_waiting(seconds: int = 5):
    """Fail instead of hanging when a call blocks (on a FIFO) for `seconds`."""
    import contextlib
    import signal

    def stuck(signum: int, frame: object) -> None:
        pytest.fail("blocked on a FIFO")  # not an OSError, which it catches

    @contextlib.contextmanager
    def guard():
        previous = signal.signal(signal.SIGALRM, stuck)
        signal.alarm(seconds)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)

    return guard()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
def test_a_trac_ini_that_is_no_file_is_refused_without_waiting(tmp_path, tree, kind):
    """A FIFO planted as trac.ini hung the start (and the dry run) for good."""
    env = tmp_path / "odd"
    make_old_environment(env, data=False)
    ini = env / "conf" / "trac.ini"
    ini.unlink()
    os.mkfifo(ini) if kind == "fifo" else ini.mkdir()
    with no_waiting():
        unserved = migrate.open_projects(values(tmp_path, tree))
    assert list(unserved) == ["odd"]
    assert "conf/trac.ini: " in unserved["odd"] and "fix it by hand" in unserved["odd"]


def describe_as_trac_does(env_path: Path, text: str) -> None:
    """What Trac's Admin > Basic Settings form writes for a description (a textarea)."""
    from trac.env import Environment

    env = Environment(str(env_path))
    env.config.set("project", "descr", text)
    env.config.save()
    env.shutdown()


def test_a_description_of_two_paragraphs_is_no_reason_to_refuse(tmp_path, tree):
    """Trac writes an empty line inside a value as a lone tab; configparser (and
    Python 2's) go on with the value after it. The repair read the next line as
    an option and refused a project Trac 1.6 opens; a form feed or U+2028 in a
    value was split into two lines the same way."""
    description = "Para one\n\nPara two\u2028same para\x0cstill"
    clean, repeated = tmp_path / "clean", tmp_path / "repeated"
    for env in (clean, repeated):
        make_old_environment(env, data=False)
        describe_as_trac_does(env, description)
    repeat_option(repeated)
    assert not old_projects.plan(clean, tree).findings
    assert migrate.open_projects(values(tmp_path, tree)) == {}
    for env in (clean, repeated):
        trac = opens(env)
        assert trac.project_description == description, env.name


def test_a_repair_keeps_what_follows_a_section_header(tmp_path):
    raw = b"[trac] ; kept\nbase_url =\n[logging]   # as the host had it\nlog_level = DEBUG\n"
    ini, said = ini_repair.repaired(raw + b"[trac]\nbase_url = http://x/\n")
    assert said[0] == "[trac] written twice, merged"
    assert (
        "[trac] ; kept\n" in ini.render() and "[logging]   # as the host had it\n" in ini.render()
    )


@pytest.mark.parametrize("name", ["C#", "what?", "100%"])
def test_the_dry_run_reads_the_version_of_a_project_with_any_name(tmp_path, tree, name):
    """The database was opened by a URI not quoted: for "C#" SQLite opened
    (and made) the file "C" beside the project, read-write, and the upgrade
    the project needs went unsaid."""
    env = tmp_path / name
    make_old_environment(env, version=29, data=False)
    before = tree_digest(tmp_path)
    planned = old_projects.plan(env, tree, migrate.trac_database_version())
    assert tree_digest(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "bzr"])
    assert any(f.action is Action.UPGRADE and "version 29" in f.text for f in planned.findings)


def test_a_plugin_too_deep_to_compile_is_named_not_a_crash(tmp_path, tree, capsys):
    """Python's compiler gives up on a deeply nested expression with a
    RecursionError, not a SyntaxError: the plugin check raised it and the whole
    start ended in a traceback (Trac's own loader logs and skips such a file)."""
    env = tmp_path / "deep"
    make_old_environment(env, data=False)
    (env / "plugins" / "table.py").write_text("TOTAL = 1" + " + 1" * 200_000 + "\n")
    assert migrate.open_projects(values(tmp_path, tree)) == {}
    assert "plugins/table.py: does not compile under Python" in capsys.readouterr().err
    opens(env)


def test_the_front_page_hides_a_database_password(tmp_path, tree, monkeypatch):
    """A password with a "/" that nobody quoted: Trac cannot parse the URI and
    quotes it whole, and the front page showed it to every visitor."""
    from trac_breezy.trac_app.front import projects

    errors = tmp_path / "project-errors.json"
    monkeypatch.setattr(paths, "PROJECT_ERRORS", errors)
    env = tmp_path / "pg"
    make_old_environment(env, data=False)
    ini = env / "conf" / "trac.ini"
    text = ini.read_text(encoding="utf-8")
    ini.write_text(text.replace("sqlite:db/trac.db", "postgres://trac:s3cr/et@db:5432/trac"))
    loaded = values(tmp_path, tree)
    unserved = migrate.open_projects(loaded)
    assert list(unserved) == ["pg"]
    migrate.record_unserved(loaded, unserved)
    for errors_file in (str(errors), ""):  # the start's line, or Trac's own message
        shown = projects.load("pg", str(env), "/trac", str(tree), errors_file=errors_file)
        assert shown.error and "postgres://trac:***@db:5432/trac" in shown.error, shown.error
        assert "s3cr" not in shown.error


def test_a_database_version_int_cannot_read_stops_no_start(tmp_path, tree):
    """A version of "²" passes str.isdigit() but not int(): the check raised
    ValueError, and so did Trac's own `database_version` in the upgrade step,
    which caught only TracError: the whole start ended in a traceback."""
    import sqlite3

    env = tmp_path / "odd"
    make_old_environment(env, data=False)
    with sqlite3.connect(env / "db" / "trac.db") as db:
        db.execute("UPDATE system SET value = '²' WHERE name = 'database_version'")
    assert old_projects.database_version(env, ini_repair.IniText("")) is None
    assert "odd" in migrate.open_projects(values(tmp_path, tree))  # Trac says why


def test_inline_comments_are_read_as_python_2_read_them():
    """Python 2.7's RawConfigParser._read cut an option's value at its first
    `;` preceded by white space (`if pos != -1 and optval[pos-1].isspace()`);
    Python 3 keeps `1 ; note` whole, which Trac 1.6 then fails to read as a
    number or a boolean."""
    raw = (
        b"[ticket]\nmax_description_size = 262144 ; the old limit\n"
        b"[a]\nsemicolon = a;b\nurl = http://x/?q=1 ;c\nleading = ;kept\n"
        b"long = first ; cut\n  second ; kept\n"
    )
    ini, said = ini_repair.repaired(raw)
    parser = ini_repair.strict_parser()
    parser.read_string(ini.render())
    assert parser.getint("ticket", "max_description_size") == 262144
    assert dict(parser.items("a")) == {
        "semicolon": "a;b",
        "url": "http://x/?q=1",
        "leading": ";kept",
        "long": "first\nsecond ; kept",
    }
    assert (
        "[ticket] max_description_size: '; the old limit' was a comment to Python 2, dropped"
        in (said)
    )
    assert ini_repair.repaired(ini.render().encode())[1] == []  # once is enough


def test_a_surprise_in_one_project_stops_no_other(tmp_path, tree, monkeypatch, capsys):
    """Whatever a repair raises that nobody foresaw, it is that project's alone."""
    for name in ("alpha", "beta"):
        make_old_environment(tmp_path / name)
    real_plan = old_projects.plan

    def plan(env_path, *args, **kwargs):
        if env_path.name == "alpha":
            raise RecursionError("maximum recursion depth exceeded")
        return real_plan(env_path, *args, **kwargs)

    monkeypatch.setattr(old_projects, "plan", plan)
    unserved = migrate.open_projects(values(tmp_path, tree))
    assert list(unserved) == ["alpha"]
    assert "RecursionError: maximum recursion depth exceeded" in unserved["alpha"]
    assert database_version(tmp_path / "beta") == 45
    assert "error: alpha: its repairs failed" in capsys.readouterr().err
