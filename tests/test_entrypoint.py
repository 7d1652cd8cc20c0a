"""The entrypoint: volume checks and one-line errors before anything starts."""

from __future__ import annotations

import os

import pytest

from trac_breezy.container.identity import Identity
from trac_breezy.startup import entrypoint

ROOT_ID = Identity(0, 0)


def test_missing_volume_is_a_clear_error(tmp_path):
    with pytest.raises(entrypoint.StartupError, match=r"^BZR_ROOT=\S+ does not exist; mount"):
        entrypoint.check_directory("BZR_ROOT", tmp_path / "absent", ROOT_ID, False)


def test_a_file_is_not_a_volume(tmp_path):
    (tmp_path / "f").write_text("")
    with pytest.raises(entrypoint.StartupError, match="is not a directory"):
        entrypoint.check_directory("BZR_ROOT", tmp_path / "f", ROOT_ID, False)


def test_unwritable_volume_names_owner_and_fix(tmp_path):
    tmp_path.chmod(0o755)
    stranger = Identity(tmp_path.stat().st_uid + 4242, tmp_path.stat().st_gid + 4242)
    entrypoint.check_directory("BZR_ROOT", tmp_path, stranger, need_write=False)
    with pytest.raises(entrypoint.StartupError, match="cannot read and write; set PUID/PGID"):
        entrypoint.check_directory("BZR_ROOT", tmp_path, stranger, need_write=True)


def test_main_refuses_a_bad_value_before_anything_else(monkeypatch, capsys):
    monkeypatch.setattr(os, "environ", {"WSGI_THREADS": "4\nInclude /etc/passwd"})
    assert entrypoint.main(["supervisord"]) == entrypoint.EXIT_CONFIG
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("trac-breezy: error: WSGI_THREADS=")


def test_projects_to_create_need_a_writable_trac_volume(tmp_path):
    """Was the tail of a traceback from `trac-admin initenv`."""
    from trac_breezy.container import settings

    trac, bzr = tmp_path / "trac", tmp_path / "bzr"
    for path in (trac, bzr):
        path.mkdir(mode=0o777)
        path.chmod(0o777)
    trac.chmod(0o755)
    stranger = Identity(trac.stat().st_uid + 4242, trac.stat().st_gid + 4242)
    env = {"TRAC_ENV_PARENT_DIR": str(trac), "BZR_ROOT": str(bzr)}
    entrypoint.check_volumes(settings.load(env), stranger)  # reading is enough
    with pytest.raises(
        entrypoint.StartupError,
        match=r"^TRAC_ENV_PARENT_DIR=\S+ is owned by .* cannot read and write "
        r"\(TRAC_PROJECTS write there\); set PUID/PGID",
    ):
        entrypoint.check_volumes(settings.load({**env, "TRAC_PROJECTS": "code"}), stranger)


@pytest.fixture
def run_dirs(tmp_path, monkeypatch):
    """The run directories, moved under tmp_path."""
    from trac_breezy.container import paths

    run = tmp_path / "run"
    monkeypatch.setattr(paths, "RUN_DIR", run)
    monkeypatch.setattr(paths, "SERVER_RUN_DIR", run / "server")
    monkeypatch.setattr(paths, "SERVER_HOME", run / "server" / "home")
    monkeypatch.setattr(paths, "EGG_CACHE", run / "server" / "egg-cache")
    monkeypatch.setattr(paths, "SMART_REQUESTS_DIR", run / "server" / "smart-requests")
    return run


@pytest.mark.skipif(os.geteuid() != 0, reason="root's side of the run directory")
def test_root_never_follows_what_the_servers_user_planted(run_dirs, tmp_path):
    """A link the servers' user left in its run directory made root chown its target."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (run_dirs / "server").mkdir(parents=True)
    (run_dirs / "server" / "home").symlink_to(victim)
    run_dirs.chmod(0o1777)
    server = Identity(4321, 4321)

    entrypoint.prepare_run_dir(server)
    assert victim.stat().st_uid == 0  # untouched
    info = run_dirs.stat()
    assert (info.st_uid, info.st_mode & 0o7777) == (0, 0o755)
    for path in (run_dirs / "server", run_dirs / "server" / "home"):
        assert not path.is_symlink() and path.is_dir() and path.stat().st_uid == 4321

    # The whole servers' directory swapped for a link: removed, not followed.
    import shutil

    shutil.rmtree(run_dirs / "server")
    (run_dirs / "server").symlink_to(victim)
    entrypoint.prepare_run_dir(server)
    assert victim.is_dir() and victim.stat().st_uid == 0
    assert not (run_dirs / "server").is_symlink()


def test_access_rules_that_cannot_be_used_stop_the_start_with_their_line(tmp_path, capsys):
    from trac_breezy.container import settings

    rules = tmp_path / "authz"
    rules.write_text("[/]\n* = r\n[/alpha]\nalice = rw\n")
    rules.chmod(0o644)
    loaded = settings.load({"AUTHZ_FILE": str(rules)})
    entrypoint.check_access_rules(loaded, ROOT_ID)
    assert f"access rules from {rules} (2 paths)" in capsys.readouterr().err
    rules.write_text("[/alpha]\nalice = rw\n")
    with pytest.raises(
        entrypoint.StartupError,
        match=rf"^AUTHZ_FILE={rules}: say at \[/\] what everybody may do .*; fix the file "
        "or unset AUTHZ_FILE$",
    ):
        entrypoint.check_access_rules(loaded, ROOT_ID)
    missing = settings.load({"AUTHZ_FILE": str(tmp_path / "absent")})
    with pytest.raises(entrypoint.StartupError, match=r"No such file or directory; mount the file"):
        entrypoint.check_access_rules(missing, ROOT_ID)
    entrypoint.check_access_rules(settings.load({}), ROOT_ID)  # no file, nothing to check
