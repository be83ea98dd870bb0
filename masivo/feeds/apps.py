from django.apps import AppConfig


class FeedsConfig(AppConfig):
    name = "masivo.feeds"
    label = "feeds"
    verbose_name = "Change feeds and consumer cursors"
