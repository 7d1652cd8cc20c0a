"""Every project inherits the shared trac.ini: new ones from creation, mounted ones at
start (defaults that hid shared values removed, chosen values kept, one log line),
idempotently; and Trac then reads the shared values, with a real Trac."""

from __future__ import annotations

from pathlib import Path

import pytest
from trac.env import Environment

from trac_breezy.admin import global_config, projects
from trac_breezy.container import settings, trac_ini

MAIL = {
    "SMTP_HOST": "smtp.example.org",
    "SMTP_FROM": "trac@example.org",
    "TRAC_COMPONENTS": "acct_mgr.admin.*",
}


@pytest.fixture
def site(tmp_path: Path) -> tuple[settings.Settings, Path]:
    """Settings with mail on, their shared file written, a Trac parent directory."""
    (tmp_path / "trac").mkdir()
    loaded = settings.load(
        {
            **MAIL,
            "TRAC_ENV_PARENT_DIR": str(tmp_path / "trac"),
            "TRAC_BASE_URL": "https://example.org/trac",
        }
    )
    shared = tmp_path / "trac-global.ini"
    overrides = trac_ini.load({"TRAC_INI__ticket__default_version": "2.0"})
    shared.write_text(trac_ini.render(loaded, overrides))
    return loaded, shared


def mounted_project(path: Path, *extra: tuple[str, str, str]) -> Path:
    """A project as plain `trac-admin initenv` makes one: every default written out."""
    env = Environment(str(path), create=True, options=[("trac", "database", "sqlite:db/trac.db")])
    for section, option, value in extra:
        env.config.set(section, option, value)
    env.config.save()
    env.shutdown()
    return path / "conf" / "trac.ini"


def test_a_mounted_project_sees_the_shared_values_and_says_what_changed(site, capsys):
    loaded, shared = site
    ini = mounted_project(loaded.trac_env_parent_dir / "code")
    assert "smtp_enabled = disabled" in ini.read_text()  # initenv wrote Trac's default
    global_config.update_all(loaded, shared)
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"trac-breezy: code: inherits {shared} now; removed Trac's defaults ")
    assert "[notification] smtp_enabled" in line and "[ticket] default_version" in line
    assert "[trac] base_url = https://example.org/trac/code (from TRAC_BASE_URL)" in line
    assert "smtp_enabled" not in ini.read_text()
    env = Environment(str(loaded.trac_env_parent_dir / "code"))
    assert env.config.getbool("notification", "smtp_enabled") is True
    assert env.config.get("notification", "smtp_server") == "smtp.example.org"
    assert env.config.get("ticket", "default_version") == "2.0"
    assert env.config.get("components", "acct_mgr.admin.*") == "enabled"
    assert env.config.get("notification-subscriber", "always_notify_owner") == (
        "TicketOwnerSubscriber"
    )
    assert env.base_url == "https://example.org/trac/code"
    env.shutdown()


def test_the_update_is_done_once(site, capsys):
    loaded, shared = site
    ini = mounted_project(loaded.trac_env_parent_dir / "code")
    global_config.update_all(loaded, shared)
    before = ini.read_text()
    capsys.readouterr()
    global_config.update_all(loaded, shared)
    assert capsys.readouterr().err == ""
    assert ini.read_text() == before


def test_values_someone_chose_are_kept_and_said_each_start(site, capsys):
    loaded, shared = site
    ini = mounted_project(
        loaded.trac_env_parent_dir / "code",
        ("notification", "smtp_from", "code-team@example.org"),
        ("trac", "base_url", "https://code.example.org"),
    )
    for _ in range(2):
        global_config.update_all(loaded, shared)
        assert "keeps its own [notification] smtp_from over the shared values" in (
            capsys.readouterr().err
        )
    env = Environment(str(ini.parent.parent))
    assert env.config.get("notification", "smtp_from") == "code-team@example.org"
    assert env.base_url == "https://code.example.org"
    env.shutdown()


def test_files_it_inherits_already_keep_their_place(site, tmp_path):
    loaded, shared = site
    theirs = tmp_path / "theirs.ini"
    theirs.write_text("[ticket]\ndefault_version = 9.9\n")
    ini = mounted_project(loaded.trac_env_parent_dir / "code", ("inherit", "file", str(theirs)))
    global_config.update_all(loaded, shared)
    env = Environment(str(ini.parent.parent))
    assert [p.filename for p in env.config.parents] == [str(theirs), str(shared)]
    assert env.config.get("ticket", "default_version") == "9.9"  # the first file named wins
    assert env.config.get("notification", "smtp_server") == "smtp.example.org"
    env.shutdown()


def test_a_project_that_cannot_be_changed_is_named_and_the_others_go_on(site, capsys):
    loaded, shared = site
    broken = loaded.trac_env_parent_dir / "broken"
    (broken / "conf").mkdir(parents=True)
    (broken / "VERSION").write_text("Trac Environment Version 1\n")
    (broken / "conf" / "trac.ini").write_text("not an ini file\n")
    mounted_project(loaded.trac_env_parent_dir / "code")
    global_config.update_all(loaded, shared)
    err = capsys.readouterr().err
    assert f"broken: could not make it inherit {shared}" in err
    assert f"code: inherits {shared} now" in err


def test_new_projects_inherit_from_creation_without_written_out_defaults(site):
    loaded, shared = site
    assert projects.create(loaded, "fresh", global_ini=shared)
    ini = (loaded.trac_env_parent_dir / "fresh" / "conf" / "trac.ini").read_text()
    assert f"file = {shared}" in ini and "[notification]" not in ini
    env = Environment(str(loaded.trac_env_parent_dir / "fresh"))
    assert env.config.getbool("notification", "smtp_enabled") is True
    assert env.config.get("logging", "log_type") == "stderr"  # what new projects get
    env.shutdown()


def test_a_project_cannot_keep_the_locked_panels_or_widen_the_repository_dirs(tmp_path, capsys):
    """Issue 19, findings 1, 3 and 10: what the shared file enforces over a project's own."""
    (tmp_path / "trac").mkdir()
    loaded = settings.load(
        {"TRAC_ENV_PARENT_DIR": str(tmp_path / "trac"), "BZR_ANONYMOUS_READ": "false"}
    )
    shared = tmp_path / "trac-global.ini"
    shared.write_text(trac_ini.render(loaded, ()))
    ini = mounted_project(
        loaded.trac_env_parent_dir / "code",
        ("components", "trac.admin.web_ui.PluginAdminPanel", "enabled"),
        ("components", "trac.admin.web_ui.loggingadminpanel.*", "enabled"),
        ("components", "trac.admin.*", "enabled"),
        ("versioncontrol", "allowed_repository_dir_prefixes", "/"),
        ("bzr", "anonymous_read", "true"),
        ("trac", "permission_policies", "DefaultPermissionPolicy"),
    )
    global_config.update_all(loaded, shared)
    (line,) = capsys.readouterr().err.splitlines()
    assert "trac.admin.web_ui.loggingadminpanel.*, trac.admin.web_ui.pluginadminpanel: " in line
    assert "those admin panels stay off in every project" in line
    assert "put PrivateSourcePolicy first in its own [trac] permission_policies" in line
    text = ini.read_text().lower()
    assert "pluginadminpanel" not in text and "loggingadminpanel" not in text
    assert "trac.admin.* = enabled" in text  # less specific than the shared rule: it loses
    env = Environment(str(loaded.trac_env_parent_dir / "code"))
    from trac.admin.web_ui import LoggingAdminPanel, PluginAdminPanel

    assert not env.is_component_enabled(PluginAdminPanel)
    assert not env.is_component_enabled(LoggingAdminPanel)
    assert env.config.get("versioncontrol", "allowed_repository_dir_prefixes") == "/srv/bzr"
    assert env.config.getbool("bzr", "anonymous_read") is False
    assert env.config.get("trac", "permission_policies").startswith("PrivateSourcePolicy,")
    env.shutdown()
