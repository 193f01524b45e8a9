"""Named registries for the variants a search can choose between (rotation modes, objectives...).

A :class:`Registry` maps names to small objects in registration order. Looking up an unknown name
raises the standard one-line :class:`~evostyle.errors.EvostyleError` that lists the known names, and
users add their own variants from Python with :meth:`Registry.register`, without editing evostyle.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Generic, TypeVar

from evostyle.errors import EvostyleError, unknown

if TYPE_CHECKING:  # annotations only
    from collections.abc import ItemsView
    from typing import Any

T = TypeVar("T")


class Registry(Generic[T]):
    """An ordered name -> object table of one ``kind`` (the word used in error messages).

    Iterating yields the names, so ``" | ".join(registry)`` and ``name in registry`` work, and a
    registry can be given to argparse as ``choices``.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, obj: T | None = None, *, replace: bool = False) -> Any:
        """Add ``obj`` under ``name`` and return it; without ``obj``, a decorator that does so.

        Registering a name twice is an error unless ``replace`` is true (so a typo cannot silently
        shadow a built-in variant).
        """
        if obj is None:
            return lambda o: self.register(name, o, replace=replace)
        if not isinstance(name, str) or not name or any(c.isspace() for c in name):
            raise EvostyleError(f"{self.kind} name must be a non-empty string without spaces, got {name!r}")
        if name in self._items and not replace:
            raise EvostyleError(f"{self.kind} {name!r} is already registered; pass replace=True to replace it")
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove ``name`` (an unknown name is an error)."""
        self.get(name)
        del self._items[name]

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name raises, listing the known ones."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown(self.kind, name, list(self._items)) from None

    def check(self, name: str) -> str:
        """``name`` if it is registered, else the unknown-name error."""
        self.get(name)
        return name

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def items(self) -> ItemsView[str, T]:
        return self._items.items()

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._items)})"

