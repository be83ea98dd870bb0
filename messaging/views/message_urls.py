"""Dashboard pages: the message log, and Settings, Contact policy and Suppressions."""

from django.urls import path

from messaging.views import messages, topics

urlpatterns = [
    path("messages/log/", messages.message_log, name="message_log"),
    path("messages/log/<int:message_id>/", messages.message_detail, name="message_detail"),
    path("settings/contact-policy/", messages.contact_policy, name="settings_contact_policy"),
    path("settings/suppressions/", messages.suppressions, name="settings_suppressions"),
    path(
        "settings/suppressions/<int:suppression_id>/remove/",
        messages.suppression_delete,
        name="settings_suppression_remove",
    ),
    path("settings/push-topics/", topics.push_topics, name="settings_push_topics"),
    path(
        "settings/push-topics/<int:topic_id>/remove/",
        topics.push_topic_remove,
        name="settings_push_topic_remove",
    ),
]
