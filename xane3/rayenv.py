"""How this project starts a private local Ray instance (search, ablations, FEFF generation).

Ray 2.60's servers listen on every interface whatever node IP is given, so a private
instance runs in Ray's token mode with a fresh secret, unless the user exported
``RAY_AUTH_MODE`` themselves. Ray reads its auth mode when ``ray`` is imported, and this
project never sets the environment at import, so the driver's Ray config is re-read
here, for whichever mode applies (a process can start several instances, in tests, and
another library may have changed the mode in between). The token reaches Ray's processes
through the environment they inherit at start; ``os.environ`` is restored afterwards.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator


@contextlib.contextmanager
def private_ray_auth() -> Iterator[None]:
    """Around ``ray.init(address="local", ...)``: token mode, and the driver's config re-read."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
    if os.environ.get("RAY_AUTH_MODE", "token") == "token":
        os.environ["RAY_AUTH_MODE"] = "token"
        os.environ["RAY_AUTH_TOKEN"] = saved["RAY_AUTH_TOKEN"] or secrets.token_hex(32)
    from ray._raylet import AuthenticationTokenLoader
    from ray._raylet import Config as RayConfig

    try:
        RayConfig.initialize("")  # the mode just set, not the one seen at import
        AuthenticationTokenLoader.instance().reset_cache()
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
