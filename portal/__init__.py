"""The 跨省通办 HPF portal.

The application factory, ``create_app``, and what goes with it (``warm_up``, the template
compiler) live in ``portal.factory`` and are loaded on first use: a process that needs only
part of the package does not load Flask and the application with it. The PDF renderer
(``python -m portal.documents``, started by gunicorn.conf.py) is one: it holds the parsed font,
and without the application it is about 20 MB smaller (issue 10: memory).
"""

from __future__ import annotations

_FACTORY = frozenset(
    {"create_app", "warm_up", "Portal", "PortalEnvironment", "PortalCodeGenerator", "ROOT"}
)


def __getattr__(name: str):
    if name in _FACTORY:
        from portal import factory

        return getattr(factory, name)
    raise AttributeError(f"module 'portal' has no attribute {name!r}")
