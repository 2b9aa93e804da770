"""The nutpie models compiled in this process, kept for reuse with new data.

A compiled model serves every dataset of its structure (its graph depends on the data
only through ``pm.Data``; see :mod:`bayeslmm.sampling.nutpie_backend`), so a second fit
of the same formula on other data swaps the data in and compiles nothing. The cache is
one explicit object, :data:`COMPILED`, that can be inspected and cleared.

Examples
--------
>>> cache = CompiledModels(size=2)
>>> cache.put(("a", ()), "model a"); cache.put(("b", ()), "model b")
>>> cache.get(("a", ())), len(cache), cache.has_structure("b")
('model a', 2, True)
>>> cache.put(("c", ()), "model c")  # the least recently used, b, is dropped
>>> sorted(k[0] for k in cache.keys())
['a', 'c']
>>> cache.clear(); len(cache)
0
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

__all__ = ["CompiledModels", "COMPILED"]


class CompiledModels:
    """A least-recently-used store of compiled models keyed by ``(structure, labels)``.

    Parameters
    ----------
    size : int
        Models kept; the least recently used goes first.

    Examples
    --------
    >>> len(CompiledModels())
    0
    """

    def __init__(self, size: int = 8) -> None:
        self.size = int(size)
        self._items: OrderedDict[Hashable, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[Hashable]:
        """The keys held, least recently used first.

        >>> CompiledModels().keys()
        []
        """
        return list(self._items)

    def get(self, key: Hashable) -> Any | None:
        """The model for ``key`` (marked as just used), or None.

        >>> CompiledModels().get(("x", ())) is None
        True
        """
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, compiled: Any) -> None:
        """Keep ``compiled`` under ``key``, dropping the least recently used beyond ``size``.

        >>> c = CompiledModels(); c.put(("x", ()), 1); len(c)
        1
        """
        self._items[key] = compiled
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def has_structure(self, structure: str) -> bool:
        """Whether any model of this structure key is held (whatever its labels).

        >>> CompiledModels().has_structure("abc")
        False
        """
        return any(k[0] == structure for k in self._items)

    def clear(self) -> None:
        """Forget every compiled model (the disk cache is untouched).

        >>> c = CompiledModels(); c.put(("x", ()), 1); c.clear(); len(c)
        0
        """
        self._items.clear()


#: The process's compiled models (in memory; the disk cache is
#: :func:`bayeslmm.sampling.nutpie_backend.cache_dir`).
COMPILED = CompiledModels()
