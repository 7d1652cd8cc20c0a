"""The shared trac.ini: the mail and plugin settings, TRAC_INI__ variables (names,
values, _FILE, refusals), and the file as the entrypoint writes it."""

from __future__ import annotations

import configparser
import os

import pytest

from trac_breezy.container import settings, trac_ini
from trac_breezy.container.settings import SettingsError

MAIL = {"SMTP_HOST": "smtp.example.org", "SMTP_FROM": "trac@example.org"}


def parsed(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def errors(environ: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        trac_ini.load(environ)
    return caught.value.messages


def test_names_map_to_section_and_option_as_written():
    values = trac_ini.load(
        {
            "TRAC_INI__ticket__default_version": "1.0",
            "TRAC_INI__ticket-custom__estimate.label": "Estimate (h)",
            "TRAC_INI__components__acct_mgr.admin.*": "enabled",
            "TRAC_INI__repositories__.dir": "/srv/bzr/code",
            "TRAC_INI__ticket__default_milestone": "",  # empty: unset
            "OTHER": "x",
        }
    )
    assert [(v.section, v.option, v.value) for v in values] == [
        ("components", "acct_mgr.admin.*", "enabled"),
        ("repositories", ".dir", "/srv/bzr/code"),
        ("ticket-custom", "estimate.label", "Estimate (h)"),
        ("ticket", "default_version", "1.0"),
    ]  # in the order of the variables' names


@pytest.mark.parametrize(
    ("name", "said"),
    [
        (
            "TRAC_INI__TICKET__DEFAULT_VERSION",
            "lower case, as trac.ini does: TRAC_INI__ticket__default_version",
        ),
        ("TRAC_INI__ticket", "not TRAC_INI__<section>__<option>"),
        ("TRAC_INI__ticket__a__b", "not TRAC_INI__<section>__<option>"),
        ("TRAC_INI____x", "not TRAC_INI__<section>__<option>"),
        ("TRAC_INI__ticket__a b", "characters trac.ini does not use"),
        ("TRAC_INI__notification__smtp_password", "comes from SMTP_PASSWORD; set SMTP_PASSWORD"),
        ("TRAC_INI__notification__smtp_enabled", "set SMTP_HOST instead"),
        ("TRAC_INI__inherit__plugins_dir", "set TRAC_PLUGINS_DIR instead"),
        ("TRAC_INI__trac__database", "set TRAC_DATABASE_URL instead"),
        ("TRAC_INI__trac__base_url", "set TRAC_BASE_URL instead"),
        ("TRAC_INI__inherit__file", "cannot inherit another file"),
    ],
)
def test_names_that_do_not_map_cleanly_are_refused_with_the_fix(name, said):
    (message,) = errors({name: "x"})
    assert message.startswith(name) and said in message


@pytest.mark.parametrize("value", ["a\nb", "a\rb", "a\x00", "\x1b[31m", " lead", "trail "])
def test_values_stay_on_one_line(value):
    (message,) = errors({"TRAC_INI__ticket__x": value})
    assert message.startswith(f"TRAC_INI__ticket__x={value!r} ")
    assert message.endswith("; fix or unset TRAC_INI__ticket__x")


def test_every_error_is_reported_at_once():
    assert len(errors({"TRAC_INI__A__b": "1", "TRAC_INI__x": "1", "TRAC_INI__s__o": "a\nb"})) == 3


def test_a_value_from_a_file_is_read_and_never_shown(private_dir):
    secret = private_dir / "key"
    secret.write_text("s3cret\n")
    (value,) = trac_ini.load({"TRAC_INI__spam-filter__akismet_api_key_FILE": str(secret)})
    assert (value.section, value.option, value.value) == (
        "spam-filter",
        "akismet_api_key",
        "s3cret",
    )
    secret.write_text("s3cret\nsecond line\n")
    (message,) = errors({"TRAC_INI__spam-filter__akismet_api_key_FILE": str(secret)})
    assert "s3cret" not in message and "(hidden)" in message
    both = {"TRAC_INI__a__b": "1", "TRAC_INI__a__b_FILE": str(secret)}
    assert errors(both) == [
        "TRAC_INI__a__b and TRAC_INI__a__b_FILE are both set; set only one of them"
    ]


def test_an_option_named_like_a_file_is_an_option():
    (value,) = trac_ini.load({"TRAC_INI__logging__log_file": "trac.log"})
    assert (value.section, value.option, value.value) == ("logging", "log_file", "trac.log")


def test_without_mail_the_file_holds_the_plugins_dir_the_tree_and_the_locked_panels():
    text = trac_ini.render(settings.load({}), ())
    assert text.startswith("# Made by trac-breezy")
    shared = parsed(text)
    assert shared.sections() == ["inherit", "bzr", "versioncontrol", "components"]
    assert shared["inherit"]["plugins_dir"] == "/srv/trac-plugins"
    # The Bazaar backend gives each repository its place in the tree (its scope).
    assert dict(shared["bzr"]) == {"tree_root": "/srv/bzr"}
    # Trac's repository panel takes directories in the tree only.
    assert dict(shared["versioncontrol"]) == {"allowed_repository_dir_prefixes": "/srv/bzr"}
    # Admin > Plugins and Logging are off in every project (issue 19, finding 1).
    assert dict(shared["components"]) == {
        "trac.admin.web_ui.loggingadminpanel": "disabled",
        "trac.admin.web_ui.pluginadminpanel": "disabled",
        # Plugins a project asks for and the image lacks, named on its admin pages.
        "trac_breezy.trac_app.missing_plugins.*": "enabled",
    }


def test_the_locked_panels_are_the_ones_the_trac_daemon_refuses():
    from trac.admin.web_ui import LoggingAdminPanel, PluginAdminPanel

    from trac_breezy.container.checks import LOCKED_COMPONENTS
    from trac_breezy.trac_app.locked_components import LOCKED

    assert set(LOCKED_COMPONENTS) == LOCKED
    assert {
        f"{cls.__module__}.{cls.__name__}".lower() for cls in (LoggingAdminPanel, PluginAdminPanel)
    } == LOCKED


@pytest.mark.parametrize(
    "rule",
    [
        "trac.admin.web_ui.PluginAdminPanel",
        "trac.admin.web_ui.pluginadminpanel.*",
        "trac.admin.web_ui.LoggingAdminPanel",
    ],
)
def test_no_setting_turns_a_locked_panel_back_on(rule: str):
    with pytest.raises(SettingsError, match="stays off in every project"):
        settings.load({"TRAC_COMPONENTS": f"acct_mgr.*,{rule}"})
    with pytest.raises(SettingsError, match="stays off in every project"):
        trac_ini.load({f"TRAC_INI__components__{rule.lower()}": "enabled"})
    # A module above the panel is less specific than the shared rule: allowed, loses.
    assert settings.load({"TRAC_COMPONENTS": "trac.admin.*"}).trac_components == ("trac.admin.*",)


def test_anonymous_reads_off_puts_the_private_source_policy_first():
    loaded = settings.load({"BZR_ANONYMOUS_READ": "false"})
    shared = parsed(trac_ini.render(loaded, ()))
    assert shared["bzr"]["anonymous_read"] == "false"
    assert shared["trac"]["permission_policies"] == (
        "PrivateSourcePolicy, DefaultWikiPolicy, DefaultTicketPolicy, "
        "DefaultPermissionPolicy, LegacyAttachmentPolicy"
    )
    assert shared["components"]["trac_breezy.trac_app.private_source.*"] == "enabled"
    both = settings.load({"BZR_ANONYMOUS_READ": "false", "AUTHZ_FILE": "/run/secrets/a"})
    chosen = trac_ini.IniValue("X", "trac", "permission_policies", "DefaultPermissionPolicy")
    shared = parsed(trac_ini.render(both, (chosen,)))
    assert shared["trac"]["permission_policies"] == (
        "PrivateSourcePolicy, AuthzSourcePolicy, AuthzChangesetPolicy, DefaultPermissionPolicy"
    )
    with pytest.raises(SettingsError, match="BZR_ANONYMOUS_READ"):
        trac_ini.load({"TRAC_INI__bzr__anonymous_read": "true"})
    with pytest.raises(SettingsError, match="BZR_ROOT"):
        trac_ini.load({"TRAC_INI__versioncontrol__allowed_repository_dir_prefixes": "/"})


def test_the_private_source_policy_names_match():
    from trac_breezy.trac_app.private_source import POLICY, PrivateSourcePolicy

    assert POLICY == PrivateSourcePolicy.__name__ == trac_ini.PRIVATE_POLICY
    assert f"{PrivateSourcePolicy.__module__}.*" == trac_ini.PRIVATE_COMPONENTS


def test_the_rule_file_turns_on_trac_s_authz_policy_first():
    loaded = settings.load({"AUTHZ_FILE": "/run/secrets/trac-breezy/authz", "BZR_ROOT": "/data"})
    shared = parsed(trac_ini.render(loaded, ()))
    assert dict(shared["svn"]) == {"authz_file": "/run/secrets/trac-breezy/authz"}
    assert shared["bzr"]["tree_root"] == "/data"
    assert shared["trac"]["permission_policies"] == (
        "AuthzSourcePolicy, AuthzChangesetPolicy, DefaultWikiPolicy, DefaultTicketPolicy, "
        "DefaultPermissionPolicy, LegacyAttachmentPolicy"
    )
    assert shared["components"]["trac_breezy.trac_app.authz_policy.*"] == "enabled"
    assert "svn" not in parsed(trac_ini.render(settings.load({}), ())).sections()


def test_trac_s_default_policies_are_the_ones_the_rule_file_goes_before():
    import trac.env  # noqa: F401 - registers [trac] permission_policies
    from trac.config import Option

    from trac_breezy.trac_app.authz_policy import AuthzChangesetPolicy

    default = Option.get_registry()[("trac", "permission_policies")].default
    assert trac_ini.policies_list(default) == list(trac_ini.TRAC_DEFAULT_POLICIES)
    assert trac_ini.AUTHZ_POLICIES[1] == AuthzChangesetPolicy.__name__
    assert f"{AuthzChangesetPolicy.__module__}.*" == trac_ini.AUTHZ_COMPONENTS


def test_chosen_policies_keep_the_rule_file_s_policy_first():
    loaded = settings.load({"AUTHZ_FILE": "/run/secrets/trac-breezy/authz"})
    chosen = "ReadonlyWikiPolicy, DefaultPermissionPolicy, AuthzSourcePolicy"
    overrides = trac_ini.load({"TRAC_INI__trac__permission_policies": chosen})
    shared = parsed(trac_ini.render(loaded, overrides))
    assert shared["trac"]["permission_policies"] == (
        "AuthzSourcePolicy, AuthzChangesetPolicy, ReadonlyWikiPolicy, DefaultPermissionPolicy"
    )
    without = parsed(trac_ini.render(settings.load({}), overrides))
    assert without["trac"]["permission_policies"] == chosen


@pytest.mark.parametrize(
    ("name", "owner"),
    [("TRAC_INI__svn__authz_file", "AUTHZ_FILE"), ("TRAC_INI__bzr__tree_root", "BZR_ROOT")],
)
def test_the_rule_file_and_the_tree_s_root_come_from_their_settings(name, owner):
    (said,) = errors({name: "/x"})
    assert said.startswith(f"{name}: ") and said.endswith(f"set {owner} instead")


def test_mail_settings_land_in_notification():
    loaded = settings.load({**MAIL, "SMTP_TLS": "starttls", "SMTP_FROM_NAME": "Dev's Trac"})
    notification = parsed(trac_ini.render(loaded, ()))["notification"]
    assert dict(notification) == {
        "smtp_enabled": "enabled",
        "email_sender": "TracBreezySmtpSender",
        "smtp_server": "smtp.example.org",
        "smtp_port": "587",
        "use_tls": "enabled",
        "use_ssl": "disabled",
        "smtp_from": "trac@example.org",
        "smtp_replyto": "trac@example.org",
        "smtp_timeout": "10",
        "smtp_from_name": "Dev's Trac",
    }


@pytest.mark.parametrize(("mode", "port"), [("none", "25"), ("starttls", "587"), ("tls", "465")])
def test_the_port_follows_the_tls_mode_unless_set(mode, port):
    shared = parsed(trac_ini.render(settings.load({**MAIL, "SMTP_TLS": mode}), ()))
    assert shared["notification"]["smtp_port"] == port
    chosen = settings.load({**MAIL, "SMTP_TLS": mode, "SMTP_PORT": "2525"})
    assert parsed(trac_ini.render(chosen, ()))["notification"]["smtp_port"] == "2525"


def test_mail_turns_on_our_sender_and_the_usual_subscriptions():
    loaded = settings.load({**MAIL, "TRAC_COMPONENTS": "acct_mgr.admin.*, acct_mgr.api.*"})
    shared = parsed(trac_ini.render(loaded, ()))
    assert dict(shared["components"]) == {
        "acct_mgr.admin.*": "enabled",
        "acct_mgr.api.*": "enabled",
        "trac.admin.web_ui.loggingadminpanel": "disabled",
        "trac.admin.web_ui.pluginadminpanel": "disabled",
        "trac_breezy.trac_app.mail.*": "enabled",
        "trac_breezy.trac_app.missing_plugins.*": "enabled",
    }
    assert dict(shared["notification-subscriber"]) == dict(trac_ini.SUBSCRIPTIONS)


def test_the_password_is_written_only_with_a_user(private_dir):
    secret = private_dir / "smtp-password"
    secret.write_text("pa%ss; #word\n")
    loaded = settings.load({**MAIL, "SMTP_USER": "mailer", "SMTP_PASSWORD_FILE": str(secret)})
    notification = parsed(trac_ini.render(loaded, ()))["notification"]
    assert (notification["smtp_user"], notification["smtp_password"]) == ("mailer", "pa%ss; #word")
    assert "pa%ss" not in repr(loaded)


def test_trac_ini_values_come_last():
    loaded = settings.load({**MAIL, "TRAC_COMPONENTS": "acct_mgr.*"})
    overrides = trac_ini.load(
        {
            "TRAC_INI__components__acct_mgr.*": "disabled",
            "TRAC_INI__notification__smtp_replyto": "x@example.org",
        }
    )
    shared = parsed(trac_ini.render(loaded, overrides))
    assert shared["components"]["acct_mgr.*"] == "disabled"
    assert shared["notification"]["smtp_replyto"] == "x@example.org"


@pytest.mark.parametrize(
    ("environ", "said"),
    [
        ({"SMTP_HOST": "smtp.example.org"}, "SMTP_HOST is set but SMTP_FROM is empty"),
        ({**MAIL, "SMTP_USER": "u"}, "SMTP_USER is set but SMTP_PASSWORD is empty"),
        ({"SMTP_HOST": "smtp.example.org:25"}, "SMTP_HOST='smtp.example.org:25' must be a host"),
        ({"SMTP_FROM": "trac@localhost"}, "SMTP_FROM='trac@localhost' must be a mail address"),
        ({"SMTP_FROM": "Trac <t@example.org>"}, "must be a mail address"),
        ({"SMTP_DEFAULT_DOMAIN": "localhost"}, "must be a mail domain"),
        ({"SMTP_TLS": "ssl"}, "SMTP_TLS='ssl' must be one of none, starttls, tls"),
        ({"SMTP_TIMEOUT": "0"}, "SMTP_TIMEOUT='0' must be a whole number from 1 to 300"),
        ({"SMTP_FROM_NAME": "a\nb"}, "SMTP_FROM_NAME='a\\nb' contains a line break"),
        ({"TRAC_COMPONENTS": "acct_mgr.admin.*,x y"}, "must be Trac component names"),
        ({"TRAC_PLUGINS_DIR": "plugins"}, "must be an absolute directory path"),
    ],
)
def test_mail_and_plugin_settings_are_checked(environ, said):
    with pytest.raises(SettingsError) as caught:
        settings.load(environ)
    assert said in "\n".join(caught.value.messages)


def test_free_text_settings_take_what_trac_ini_can_hold():
    loaded = settings.load({**MAIL, "SMTP_FROM_NAME": 'The "Dev" <Team>', "SMTP_HOST": "::1"})
    assert loaded.smtp_from_name == 'The "Dev" <Team>' and loaded.smtp_host == "::1"
    assert settings.load({"SMTP_FROM": "o'brien+trac@mail.example.org"}).smtp_from


def test_the_file_is_replaced_whole_and_readable_by_the_group_only(tmp_path):
    target = tmp_path / "trac-global.ini"
    target.write_text("old")
    trac_ini.write("[a]\nb = c\n", target, os.getgid())
    assert target.read_text() == "[a]\nb = c\n"
    info = target.stat()
    assert info.st_mode & 0o777 == 0o640 and info.st_gid == os.getgid()
    if os.geteuid() == 0:
        assert info.st_uid == 0
    assert [p.name for p in tmp_path.iterdir()] == ["trac-global.ini"]


def test_the_entrypoint_reports_table_and_trac_ini_errors_together():
    from trac_breezy.startup import entrypoint

    with pytest.raises(SettingsError) as caught:
        entrypoint.load_environment({"SMTP_TLS": "ssl", "TRAC_INI__X__y": "1"})
    assert len(caught.value.messages) == 2
    loaded, overrides = entrypoint.load_environment({"TRAC_INI__ticket__x": "1"})
    assert loaded.smtp_host == "" and [v.option for v in overrides] == ["x"]


def test_trac_s_about_page_shows_no_secret_of_the_shared_file(tmp_path, monkeypatch):
    """Issue 19: every TRAC_ADMIN has CONFIG_VIEW, and /about lists inherited options."""
    import trac.about
    from trac.env import Environment

    # Trac's own function, even where another test loaded trac.wsgi (which hides) first.
    stock = getattr(trac.about.get_configinfo, "unmasked", trac.about.get_configinfo)
    monkeypatch.setattr(trac.about, "get_configinfo", stock)

    from trac_breezy.trac_app.secret_options import SHOWN_INSTEAD, hide

    loaded = settings.load({**MAIL, "SMTP_USER": "mailer", "SMTP_PASSWORD": "host-secret-1"})
    overrides = trac_ini.load({"TRAC_INI__spam-filter__akismet_api_key": "host-secret-2"})
    shared = tmp_path / "shared.ini"
    shared.write_text(trac_ini.render(loaded, overrides))
    env = Environment(
        str(tmp_path / "p"),
        create=True,
        options=[("trac", "database", "sqlite:db/trac.db"), ("inherit", "file", str(shared))],
    )
    try:
        before = str(trac.about.get_configinfo(env))
        hide()
        hide()  # (once is enough: not wrapped twice)
        after = trac.about.get_configinfo(env)
    finally:
        env.shutdown()
    assert "host-secret-1" in before and "host-secret-2" in before  # what Trac shows
    values = {(s["name"], o["name"]): o["value"] for s in after for o in s["options"]}
    assert values[("notification", "smtp_password")] == SHOWN_INSTEAD
    assert values[("spam-filter", "akismet_api_key")] == SHOWN_INSTEAD
    assert values[("notification", "smtp_user")] == "mailer"
    assert "host-secret" not in str(after)
