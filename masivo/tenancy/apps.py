from django.apps import AppConfig


class TenancyConfig(AppConfig):
    name = "masivo.tenancy"
    label = "tenancy"
    verbose_name = "Organizations and workspaces"
