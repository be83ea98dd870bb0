from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "masivo.dashboard"
    label = "dashboard"
    verbose_name = "Dashboard"
