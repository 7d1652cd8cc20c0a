"""Trac's admin panels that stay off in every project, whatever its trac.ini says.

Why: Trac's *Admin > Plugins* panel (`PluginAdminPanel`) copies an uploaded
`.py` or `.egg` into the project's `plugins/`, which Trac then loads: any
`TRAC_ADMIN` of one project would run code as the servers' user, who reads
every project, the users file and every branch. Trac's *Admin > Logging*
panel (`LoggingAdminPanel`) takes any absolute log file, so a project admin
could make Trac append to any file that user may write (another project's
trac.ini, a branch). Plugins come from the image (`TRAC_PLUGINS`) and the
operator's read-only `TRAC_PLUGINS_DIR`; logging from `TRAC_INI__logging__…`.

Trac's own switch is `[components] NAME = disabled`, and the shared trac.ini
says so (container/trac_ini.py; the start removes a project's own rules that
would turn them on again, admin/global_config.py). But a project's trac.ini
is read again whenever it changes, and may inherit other files first, so the
Trac daemon also refuses them itself: `lock()` wraps Trac's
`Environment.is_component_enabled`, the one place Trac asks (there is no
option or hook that a project's configuration cannot override).
"""

from __future__ import annotations

from trac.env import Environment

# Trac's spelling of the components (lower case); container/checks.py
# LOCKED_COMPONENTS keeps the same names (a test keeps the two equal).
LOCKED = frozenset(
    {
        "trac.admin.web_ui.loggingadminpanel",
        "trac.admin.web_ui.pluginadminpanel",
    }
)


def lock() -> None:
    """Make every Trac environment of this process refuse the LOCKED components."""
    original = Environment.is_component_enabled
    if getattr(original, "locks", None) == LOCKED:
        return

    def is_component_enabled(self: Environment, cls: type | str) -> bool | None:
        if self._component_name(cls) in LOCKED:
            return False
        enabled: bool | None = original(self, cls)
        return enabled

    is_component_enabled.locks = LOCKED  # type: ignore[attr-defined]
    Environment.is_component_enabled = is_component_enabled
