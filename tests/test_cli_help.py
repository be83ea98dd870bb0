"""`masivo up --help` explains every option."""

import pytest

from masivo.cli import build_parser


def test_every_option_of_up_has_help(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--help"])

    text = " ".join(capsys.readouterr().out.split())
    assert "--port PORT the dashboard's and API's port (default: $PORT, else 8000)" in text
    assert "--host HOST the address to listen on (default 127.0.0.1;" in text
    assert "--web-workers WEB_WORKERS gunicorn worker processes serving web requests" in text
    assert "--worker-concurrency WORKER_CONCURRENCY Celery worker processes running" in text
