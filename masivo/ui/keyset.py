"""Keyset ("cursor") paging for dashboard lists: no OFFSET and no COUNT(*).

A list is ordered newest first by (a time column, id); the cursor names the last row shown and
the next page is the rows strictly after it in that order. With an index on
(workspace_id, time DESC, id DESC) every page, however deep, is one short index range scan.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import BadRequest
from django.db.models import Model, Q, QuerySet


@dataclass(frozen=True)
class Cursor:
    at: datetime
    id: int

    def encode(self) -> str:
        raw = f"{self.at.isoformat()}|{self.id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """The cursor in a URL; a mangled one is a 400, never a silently different page."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            at_text, id_text = raw.split("|")
            cursor = cls(at=datetime.fromisoformat(at_text), id=int(id_text))
        except (ValueError, UnicodeDecodeError, binascii.Error) as error:
            raise BadRequest("malformed cursor") from error
        if cursor.at.tzinfo is None:
            raise BadRequest("malformed cursor")
        return cursor

    @classmethod
    def of(cls, row: Model, time_field: str) -> Cursor:
        return cls(at=getattr(row, time_field), id=row.id)


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: str | None


def newest_first_slice(
    queryset: QuerySet, *, time_field: str, after: Cursor | None, size: int
) -> QuerySet:
    """The query of a page: one row more than `size`, to know whether another page follows."""
    if after is not None:
        # The redundant `<=` bounds the index range scan; the OR alone would only filter rows.
        queryset = queryset.filter(
            Q(**{f"{time_field}__lt": after.at}) | Q(**{time_field: after.at, "id__lt": after.id}),
            **{f"{time_field}__lte": after.at},
        )
    return queryset.order_by(f"-{time_field}", "-id")[: size + 1]


def newest_first_page(
    queryset: QuerySet, *, time_field: str, after: Cursor | None, size: int
) -> Page:
    """`size` rows ordered by (time_field, id) descending, after `after`; one query."""
    rows = list(newest_first_slice(queryset, time_field=time_field, after=after, size=size))
    if len(rows) <= size:
        return Page(rows=rows, next_cursor=None)
    rows = rows[:size]
    return Page(rows=rows, next_cursor=Cursor.of(rows[-1], time_field).encode())


def cursor_from(request, name: str) -> Cursor | None:
    text = request.GET.get(name)
    return Cursor.decode(text) if text else None
