"""How every `trac-breezy-*` command ends: one line on failure, exit status 1.

Each command passes its work here. Our own errors (`AdminError`), invalid
settings and OS errors already say what to do and are printed as they are;
anything unexpected (a Breezy lock error, say) is still one line naming its
type, never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from trac_breezy import one_line
from trac_breezy.admin import AdminError
from trac_breezy.container import settings
from trac_breezy.container.settings import Settings

EXIT_FAILED = 1


def run(program: str, action: Callable[[Settings], None], loaded: Settings | None = None) -> int:
    """Run `action` with the settings (read from the environment unless given)."""
    try:
        action(settings.load(os.environ) if loaded is None else loaded)
    except settings.SettingsError as error:
        for message in error.messages:
            fail(program, message)
        return EXIT_FAILED
    except (AdminError, OSError) as error:
        return fail(program, error)
    except Exception as error:
        return fail(program, f"{type(error).__name__}: {error}")
    return 0


def fail(program: str, error: object) -> int:
    print(f"{program}: error: {one_line(error)}", file=sys.stderr)
    return EXIT_FAILED
