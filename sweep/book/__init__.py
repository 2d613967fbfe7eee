"""The book: each factor's chosen configuration combined into one portfolio (``sweep portfolio``,
``kind = "portfolio"``), and the live trading configuration exported from it and checked
against it (``sweep export``, ``sweep check``).

Importing this package registers the ``portfolio`` study kind.
"""

from sweep.book.study import KIND

__all__ = ["KIND"]
