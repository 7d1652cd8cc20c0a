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
