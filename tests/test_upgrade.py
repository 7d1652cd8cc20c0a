"""Upgrading old Trac environments at start, with a real Trac and real databases."""

from __future__ import annotations

import os
from pathlib import Path

from old_trac import (
    OLD_VERSION,
    add_failing_plugin,
    database_version,
    enum_columns,
    has_wiki_page,
    make_old_environment,
    tree_digest,
)

from trac_breezy.admin import projects, upgrade
from trac_breezy.container import settings
from trac_breezy.container.settings import Settings


def values(parent: Path) -> Settings:
    return settings.load({"TRAC_ENV_PARENT_DIR": str(parent)})


def test_old_environment_is_copied_then_upgraded(tmp_path, capsys):
    make_old_environment(tmp_path / "old")
    projects.create(values(tmp_path), "current")
    before = tree_digest(tmp_path / "old")

    upgrade.upgrade_all(values(tmp_path))

    env = tmp_path / "old"
    assert database_version(env) == 45
    assert "description" in enum_columns(env)
    assert has_wiki_page(env, "TracUpgrade")  # `wiki upgrade` ran
    (backup,) = (tmp_path / upgrade.BACKUP_DIR_NAME).iterdir()
    assert backup.name.startswith("old-")
    assert database_version(backup) == OLD_VERSION
    assert tree_digest(backup) == before
    err = capsys.readouterr().err
    assert f"old: needs an upgrade (database version {OLD_VERSION})" in err
    assert f"old: upgraded from database version {OLD_VERSION} to 45" in err
    assert "current" not in err  # an up-to-date project is not touched


def test_up_to_date_projects_cost_no_copy(tmp_path):
    projects.create(values(tmp_path), "current")
    upgrade.upgrade_all(values(tmp_path))
    assert not (tmp_path / upgrade.BACKUP_DIR_NAME).exists()


def test_failed_upgrade_leaves_the_environment_as_it_was(tmp_path):
    env = tmp_path / "old"
    make_old_environment(env)
    add_failing_plugin(env)
    (env / "files" / "attachments").mkdir(parents=True, exist_ok=True)
    (env / "files" / "attachments" / "big.bin").write_bytes(os.urandom(1 << 20))
    before = tree_digest(env)

    failed = upgrade.upgrade_all(values(tmp_path))

    message = failed["old"]
    assert message.startswith("old: `trac-admin upgrade --no-backup` failed")
    assert "the plugin upgrade broke on purpose" in message
    assert "restored from" in message and "is unchanged" in message
    # Trac's own schema upgrade ran before the plugin's failed; it is undone.
    assert database_version(env) == OLD_VERSION
    assert "description" not in enum_columns(env)
    assert tree_digest(env) == before


def test_one_failed_upgrade_stops_no_other_project(tmp_path, capsys):
    """Twenty projects mounted, one whose plugin breaks its upgrade: the
    other nineteen are upgraded and served (issue 20)."""
    for name in ("alpha", "broken", "zulu"):
        make_old_environment(tmp_path / name)
    add_failing_plugin(tmp_path / "broken")

    failed = upgrade.upgrade_all(values(tmp_path))

    assert list(failed) == ["broken"]
    assert database_version(tmp_path / "alpha") == 45
    assert database_version(tmp_path / "zulu") == 45
    assert database_version(tmp_path / "broken") == OLD_VERSION
    assert "error: broken: `trac-admin upgrade --no-backup` failed" in capsys.readouterr().err


def test_a_second_failed_attempt_makes_no_second_copy(tmp_path, capsys):
    env = tmp_path / "old"
    make_old_environment(env)
    add_failing_plugin(env)
    for _attempt in range(2):
        assert "old" in upgrade.upgrade_all(values(tmp_path))
    (backup,) = (tmp_path / upgrade.BACKUP_DIR_NAME).iterdir()
    assert f"{backup}, made by an earlier attempt, still matches it" in capsys.readouterr().err
    assert database_version(env) == OLD_VERSION


def test_mirror_removes_extra_files_and_keeps_unchanged_ones(tmp_path):
    source, target = tmp_path / "source", tmp_path / "target"
    (source / "db").mkdir(parents=True)
    (source / "db" / "trac.db").write_bytes(b"old")
    (source / "keep").write_text("same")
    (target / "db").mkdir(parents=True)
    (target / "db" / "trac.db").write_bytes(b"newer and longer")
    (target / "db" / "trac.db.45.bak").write_bytes(b"extra")
    (target / "new-dir" / "sub").mkdir(parents=True)
    (target / "keep").write_text("same")
    os.utime(target / "keep", ns=(1, (source / "keep").stat().st_mtime_ns))
    inode = (target / "keep").stat().st_ino

    upgrade.mirror(source, target, skip=set())

    assert tree_digest(target) == tree_digest(source)
    assert not (target / "new-dir").exists()
    assert (target / "keep").stat().st_ino == inode
