"""End to end: Trac plugins, both ways the README gives.

- a real plugin from PyPI (TracAccountManager), installed into the image with the
  `TRAC_PLUGINS` build argument (compose.yaml passes it): a second build of the
  same Dockerfile, which reuses every layer above the argument;
- a single-file plugin in the mounted plugins directory (`TRAC_PLUGINS_DATA`,
  mounted at TRAC_PLUGINS_DIR).

Both are enabled with TRAC_COMPONENTS, load in every project, and show: the
account manager's panel in Trac's admin pages, the file plugin's page.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from conftest import running_stack
from stack import ADMIN, Stack
from trac_web import TracUser

pytestmark = pytest.mark.e2e

PLUGIN = "TracAccountManager==0.6.0"
PLUGIN_IMAGE = "trac-breezy:test-plugins"
PROJECTS = ("code", "docs")

HELLO_PLUGIN = '''\
"""A single-file Trac plugin: GET /hello-shared answers from the shared plugins dir."""
from trac.core import Component, implements
from trac.web.api import IRequestHandler


class HelloShared(Component):
    implements(IRequestHandler)

    def match_request(self, req):
        return req.path_info == "/hello-shared"

    def process_request(self, req):
        req.send(("hello from %s" % self.env.project_name).encode(), "text/plain")
'''


@pytest.fixture(scope="module")
def plugin_image(image: str) -> str:
    """The image again, with the plugin: the README's way (`TRAC_PLUGINS=... compose build`)."""
    started = time.monotonic()
    builder = Stack(
        project="tbtestbuildplugins",
        port=0,
        image=PLUGIN_IMAGE,
        env_overrides={"TRAC_PLUGINS": PLUGIN},
    )
    builder.compose("build", timeout=1800)
    print(f"built {PLUGIN_IMAGE} (after {image}) in {time.monotonic() - started:.0f} s")
    return PLUGIN_IMAGE


@pytest.fixture(scope="module")
def plugin_stack(plugin_image: str, tmp_path_factory) -> Iterator[Stack]:
    plugins = tmp_path_factory.mktemp("plugins")
    (plugins / "hello_shared.py").write_text(HELLO_PLUGIN)
    plugins.chmod(0o755)
    (plugins / "hello_shared.py").chmod(0o644)
    with running_stack(
        plugin_image,
        "plugins",
        ADMIN_USER=ADMIN[0],
        ADMIN_PASSWORD=ADMIN[1],
        TRAC_PROJECTS=",".join(PROJECTS),
        TRAC_PLUGINS_DATA=str(plugins),
        TRAC_COMPONENTS="acct_mgr.api.*,acct_mgr.admin.*,hello_shared.*",
    ) as stack:
        yield stack


@pytest.mark.parametrize("project", PROJECTS)
def test_the_pypi_plugin_shows_its_panel_in_every_project(plugin_stack: Stack, project: str):
    admin = TracUser(plugin_stack.url(f"/trac/{project}"))
    admin.login(*ADMIN)
    status, page = admin.open("/admin")
    assert status == 200, page[-2000:]
    assert f'href="/trac/{project}/admin/accounts/config"' in page, page[-4000:]
    status, page = admin.open("/admin/accounts/config")
    assert status == 200 and "AccountManagerPlugin" in page, page[-3000:]
    # (Trac's Admin > Plugins page is off in every project: /about lists them.)
    status, page = admin.open("/about")
    assert status == 200 and "TracAccountManager" in page and "hello_shared" in page


@pytest.mark.parametrize("project", PROJECTS)
def test_the_file_plugin_answers_in_every_project(plugin_stack: Stack, project: str):
    status, _, text = plugin_stack.get(f"/trac/{project}/hello-shared")
    assert (status, text) == (200, f"hello from {project}")


def test_the_plugin_was_installed_at_build_time(plugin_stack: Stack):
    shown = plugin_stack.exec("pip", "show", "TracAccountManager").stdout
    assert "Version: 0.6.0" in shown
    assert plugin_stack.exec("pip", "check").returncode == 0
