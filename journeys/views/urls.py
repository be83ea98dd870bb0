"""Dashboard pages of journeys, wired in by masivo/dashboard/urls.py under /w/<workspace_id>/
(their names join the `dashboard:` namespace)."""

from django.urls import path

from journeys.views import builder, journeys

JOURNEY = "journeys/<int:journey_id>"
STEP = f"{JOURNEY}/steps/<str:step_id>"

urlpatterns = [
    path("journeys/", journeys.journey_list, name="journeys"),
    path("journeys/new/", journeys.journey_new, name="journey_new"),
    path(f"{JOURNEY}/", builder.journey_builder, name="journey_builder"),
    path(f"{JOURNEY}/versions/<int:number>/", builder.journey_version, name="journey_version"),
    path(f"{JOURNEY}/entry/", builder.journey_entry, name="journey_entry"),
    path(f"{JOURNEY}/exits/", builder.journey_exit_add, name="journey_exit_add"),
    path(
        f"{JOURNEY}/exits/<int:index>/remove/",
        builder.journey_exit_remove,
        name="journey_exit_remove",
    ),
    path(f"{JOURNEY}/publish/", builder.journey_publish, name="journey_publish"),
    path(f"{JOURNEY}/steps/", builder.journey_step_add, name="journey_step_add"),
    path(f"{STEP}/", builder.journey_step_edit, name="journey_step_edit"),
    path(f"{STEP}/remove/", builder.journey_step_remove, name="journey_step_remove"),
    path(f"{STEP}/paths/", builder.journey_step_paths, name="journey_step_paths"),
    path(f"{STEP}/templates/", builder.journey_step_templates, name="journey_step_templates"),
    path(f"{JOURNEY}/<str:action>/", journeys.journey_action, name="journey_action"),
]
