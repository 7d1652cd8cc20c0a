"""Everything at once for about two minutes: pulls, pushes and Trac pages.

Anonymous pullers of a 1,000-revision branch, authenticated pushers to
branches of their own and Trac readers of that branch's pages, together:
no request may fail, Trac's p99 must stay under 2 s while clones run, and
the daemons' memory and open file descriptors must be as flat after the load
as they were when warm. bench/mixed_load.py runs the same for ten minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import load
import pytest
from conftest import running_stack
from stack import ADMIN, Stack

pytestmark = pytest.mark.e2e
WARM_SECONDS = 30
LOAD_SECONDS = 120


@pytest.fixture(scope="module")
def loaded_stack(image: str) -> Iterator[Stack]:
    with running_stack(
        image, "load", ADMIN_USER=ADMIN[0], ADMIN_PASSWORD=ADMIN[1], **load.STACK_ENV
    ) as stack:
        yield stack


def test_mixed_load_holds(loaded_stack: Stack, tmp_path: Path):
    load.prepare(loaded_stack, tmp_path / "prepare")
    warm_up = load.run(loaded_stack, tmp_path / "warm", WARM_SECONDS, 2, 1, 2)
    assert warm_up.errors == [], warm_up.errors[:5]
    time.sleep(5)
    warm = load.resources(loaded_stack)

    outcome = load.run(loaded_stack, tmp_path / "load", LOAD_SECONDS)
    time.sleep(5)
    after = load.resources(loaded_stack)
    report = load.summary(outcome)
    print(f"warm {warm}, after {after}, {report}")

    assert outcome.errors == [], outcome.errors[:5]
    assert outcome.pulls >= 6 and outcome.pushes >= 2 and len(outcome.trac_seconds) >= 100
    assert report["trac_p99_s"] < 2, report
    assert after["rss_kib"] <= 1.3 * warm["rss_kib"], (warm, after, report)
    assert after["fds"] <= warm["fds"] + 16, (warm, after)
