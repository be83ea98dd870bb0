"""`manage.py secrets_rotate`: re-encrypt every stored secret with the first key of
MASIVO_SECRET_KEYS (docs/operations.md, Secret keys). It lives here because messaging's
connections are the first secrets; it rewrites every EncryptedJSONField of every app."""

from django.core.management.base import BaseCommand, CommandError

from masivo.secrets import SecretDecryptionError, secrets_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of MASIVO_SECRET_KEYS."

    def handle(self, *args, **options):
        try:
            done = secrets_rotate()
        except SecretDecryptionError as error:
            raise CommandError(str(error)) from None
        for column, count in done.items():
            self.stdout.write(f"{column}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"{sum(done.values())} secrets re-encrypted"))
