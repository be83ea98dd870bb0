from django.db import models

from masivo.tenancy.managers import TenantModel

NO_SCOPE = 0


class FeedCursor(TenantModel):
    """How far one consumer has read one feed in one workspace (and one scope, if scoped).

    The position is the (xid, id) of the last row the consumer applied; xid8 is an unsigned
    64-bit number, so it is kept as numeric(20) and cast to xid8 in SQL. Written only by
    `masivo.feeds.services`, in the consumer's own transaction.
    """

    consumer = models.CharField(max_length=100)
    feed = models.CharField(max_length=100)
    # The scope column's value (an audience id) for scoped consumers; NO_SCOPE otherwise.
    scope = models.BigIntegerField(default=NO_SCOPE)
    last_xid = models.DecimalField(max_digits=20, decimal_places=0, default=0)
    last_id = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "consumer", "feed", "scope"], name="feed_cursor_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.consumer} on {self.feed} at {self.last_xid}.{self.last_id}"
