"""Every word the product shows people, by key, in one catalog per language.

The catalogs are TOML files beside this module (``zh-CN.toml``, the default, and ``en.toml``);
a table groups keys, so ``[status] accepted = "已受理"`` is the key ``status.accepted``. Code
asks for ``t("status.accepted")`` and never holds user-facing words itself (the catalog data of
the service items is Chinese data, not words of the program). ``{name}`` fields are filled from
the keyword arguments. A refusal raised with a code (casework's errors) is worded by
:func:`refusal`.

The language is ``SERVICENET_LANG`` (``zh-CN`` or ``en``) if set, else English where the locale
(``LC_ALL``, ``LC_MESSAGES``, ``LANG``) asks for it, else Chinese.
"""

from messages._catalog import LANGUAGES, catalog, language, t
from messages._refusal import refusal

__all__ = ["LANGUAGES", "catalog", "language", "refusal", "t"]
