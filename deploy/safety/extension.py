"""The compiled C extension ``deploy.safety._native`` (``deploy/safety/native/``, built by
``setup.py`` at install): the safety filter's tick and the critic graph's evaluator. Both C
engines load it here, and say why they cannot run when it is missing."""

from __future__ import annotations

from typing import Any


class NativeUnavailable(RuntimeError):
    """A C engine cannot run here: the extension is not built, the critic is not the selection
    graph or not native, or the C critic disagrees with onnxruntime."""


def extension() -> Any:
    """The ``deploy.safety._native`` C extension, or ``NativeUnavailable`` saying why not."""
    try:
        from deploy.safety import _native
    except ImportError as e:
        raise NativeUnavailable(
            f"the C extension deploy.safety._native is not built ({e}); reinstall with a C compiler "
            "(./spine.sh setup)"
        ) from None
    return _native
