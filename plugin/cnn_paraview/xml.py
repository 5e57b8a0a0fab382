"""Small builders for the server-manager XML the property decorators take."""

from __future__ import annotations

from html import escape
from typing import Sequence


def documentation(text: str) -> str:
    return f"<Documentation>{escape(text)}</Documentation>"


def enumeration(entries: Sequence[str], text: str) -> str:
    """An EnumerationDomain (values 0, 1, ... shown and set by their text) and its tooltip."""
    items = "".join(f'<Entry value="{i}" text="{escape(entry)}"/>' for i, entry in enumerate(entries))
    return f'<EnumerationDomain name="enum">{items}</EnumerationDomain>{documentation(text)}'
