"""The embedded Redis keeps what it holds (queued Celery messages among it) across a restart:
a snapshot a minute after a change, and a last one when it is stopped."""

import redis

from masivo.runtime import EmbeddedServices


def test_the_embedded_redis_snapshots_and_restores_its_data(tmp_path):
    services = EmbeddedServices(root=tmp_path)
    try:
        client = redis.Redis.from_url(services.redis_url())
        assert client.config_get("save") == {"save": "60 1"}
        client.lpush("celery", "a queued task")
        services.stop_started()
        assert (tmp_path / "redis" / "dump.rdb").exists()

        client = redis.Redis.from_url(services.redis_url())
        assert client.lrange("celery", 0, -1) == [b"a queued task"]
    finally:
        services.stop_started()
