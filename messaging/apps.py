from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "messaging"

    def ready(self):
        # Registers the system check that a deployment has MASIVO_SECRET_KEYS (masivo.secrets).
        import masivo.secrets  # noqa: F401
