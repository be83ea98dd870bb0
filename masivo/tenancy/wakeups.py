"""Waking a worker by task name once the transaction that recorded the work commits.

Services wake tasks by name so that no service imports a tasks module (tasks import services;
the other way round is an import cycle). The work itself is always recorded in Postgres first
(a queued row, a NULL `processed_at`), and a beat sweep re-queues what a lost wake-up left
behind: a broker that is down costs a delay, never the work, so its error is logged and not
raised into a request whose transaction has already committed.
"""

import logging

from celery import current_app
from django.db import transaction
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def task_wake(name: str, **kwargs) -> None:
    """Queue the task `name` now, with keyword arguments (ids and `workspace_id`)."""
    try:
        current_app.send_task(name, kwargs=kwargs)
    except (KombuError, RedisError, OSError) as error:
        logger.warning("%s not queued (its sweep will pick it up): %s", name, error)


def task_wake_on_commit(name: str, **kwargs) -> None:
    """Queue the task `name` after the current transaction commits (never if it rolls back)."""
    transaction.on_commit(lambda: task_wake(name, **kwargs))
