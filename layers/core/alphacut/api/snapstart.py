"""Lambda SnapStart for the model functions (cutout, selfie, costume).

With SnapStart, Lambda runs a function's init once when a version is published, snapshots the
memory, and starts every environment from that snapshot: the models are loaded and have run once
(``Pipeline.warm_up``) before it, so no customer pays for either. What must differ per
environment is refreshed after a restore: the random generators (seeded from the same state in
every copy of the snapshot) and the AWS connections and clients, which hold sockets and
credentials of the moment the snapshot was taken. The hooks come from ``snapshot_restore_py``,
which the Lambda Python runtime provides; elsewhere (local stack, tests without it) nothing is
registered.

Usage (alphacut.api.app.make_handler, after the warm-up in init)::

    snapstart.register()
"""

from __future__ import annotations

import random

from alphacut.api import services


def before_snapshot() -> None:
    # init has loaded the models and run them once (make_handler): that is what goes into the
    # snapshot; no socket or credential does
    services.forget_connections()


def after_restore() -> None:
    random.seed()  # from os.urandom: each restored environment draws differently
    try:
        import numpy as np

        np.random.seed()
    except ImportError:
        pass
    services.forget_connections()


def register() -> bool:
    """Register the hooks; False where the runtime has no SnapStart hooks."""
    try:
        from snapshot_restore_py import register_after_restore, register_before_snapshot
    except ImportError:
        return False
    register_before_snapshot(before_snapshot)
    register_after_restore(after_restore)
    return True
