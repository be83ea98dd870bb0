#!/usr/bin/env python
"""Django's management commands. With no DATABASE_URL/REDIS_URL, the embedded servers are used."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masivo.settings")
    from masivo.runtime import ensure_services

    ensure_services()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
