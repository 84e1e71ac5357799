"""jira-sync for Python platforms: the sandboxed component under wasmtime-py.

A platform constructs a `Plugin` with its own implementations of the imports (`imports`), then
calls `handle`, `sync_status` and `sync_assignee`; each call runs in a fresh sandbox.
"""

from .limits import CallError, ContractError, GuestTrap, LimitExceeded, Limits
from .plugin import WIT_PACKAGE, WIT_VERSION, Observer, Plugin, bundled_component, interface
from .types import *  # noqa: F401,F403 -- the WIT's types are this package's vocabulary
from .types import __all__ as _types

__all__ = [
    "CallError", "ContractError", "GuestTrap", "LimitExceeded", "Limits", "Observer", "Plugin",
    "WIT_PACKAGE", "WIT_VERSION", "bundled_component", "interface", *_types,
]
