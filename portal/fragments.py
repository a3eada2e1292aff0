"""HTML fragments kept per worker (issue 10): a board's cards, the ledger's rows.

A fragment that a page repeats dozens of times (a card, a table row) is rendered from a value
that holds everything it shows (a frozen dataclass or named tuple), so its HTML is a function
of that value, its template, the language and the mount point. Each worker keeps that HTML
under a key made of them, at most ``size`` fragments, the oldest dropped first. The template
object is part of the key: where templates reload (development), an edited template is a new
object and renders anew. ``PORTAL_HTML_CACHE=0`` renders every fragment from its template.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from flask import current_app, g, request
from flask_babel import get_locale

T = TypeVar("T")


class FragmentCache(Generic[T]):
    """At most ``size`` entries, the oldest dropped first; safe across a worker's threads."""

    def __init__(self, size: int):
        self.size = size
        self._store: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        found = self._store.get(key)
        if found is None:
            found = make()
            with self._lock:
                while len(self._store) >= self.size > 0:
                    self._store.pop(next(iter(self._store)))  # the oldest
                if self.size > 0:
                    self._store[key] = found
        return found

    def clear(self) -> None:
        with self._lock:
            self._store.clear()

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self):
        return iter(list(self._store))


def enabled() -> bool:
    return bool(current_app.config["HTML_CACHE"])


def request_key(environment, template_name: str):
    """The template and what every fragment of this request shares in its key (the template
    object, the language, the mount point), found once per request and template."""
    found = g.setdefault("fragment_keys", {})
    key = found.get(template_name)
    if key is None:
        template = environment.get_template(template_name)
        key = found[template_name] = (template, str(get_locale()), request.script_root)
    return key
