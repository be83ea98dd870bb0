"""`migrate` as the schema owner: with DATABASE_OWNER_URL set (split roles), the migrations run
as that role, so it owns every table, and the application role (DATABASE_URL's) is then granted
its DML on them. Without it, Django's `migrate` as before (the application role owns the schema).
"""

from django.conf import settings
from django.core.management.commands.migrate import Command as DjangoMigrate
from django.db import connections

from masivo.dbsetup import grant_app_privileges, login_of, schema_owner


class Command(DjangoMigrate):
    def handle(self, *args, **options):
        owner_url = settings.DATABASE_OWNER_URL
        if not owner_url or options["database"] != "default":
            return super().handle(*args, **options)
        with schema_owner(owner_url):
            super().handle(*args, **options)
            # The grants also reach databases that bootstrap never saw (a test run's own).
            with connections["default"].cursor() as cursor:
                grant_app_privileges(
                    cursor,
                    owner=login_of(owner_url)["USER"],
                    app=login_of(settings.DATABASE_URL)["USER"],
                )
