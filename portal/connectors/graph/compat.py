"""A stand-in for a package msgraph-core imports without declaring it; imported by this package's
``__init__`` before anything imports msgraph, so that it is in place whichever module is imported first.
"""

from __future__ import annotations

import sys
import types


def _ensure_deprecated_module() -> None:
    # msgraph-core 1.5.2 imports the `deprecated` package in its batch module without declaring
    # it as a dependency. It only decorates a class nobody here uses, so when the package is
    # absent a no-op stand-in is enough; with the real package installed this does nothing.
    try:
        import deprecated  # noqa: F401
    except ImportError:
        shim = types.ModuleType("deprecated")
        shim.deprecated = lambda *args, **kwargs: (lambda obj: obj)  # type: ignore[attr-defined]
        sys.modules["deprecated"] = shim


_ensure_deprecated_module()
