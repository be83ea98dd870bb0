"""Settings, Push topics: which audiences keep their members' devices subscribed to an FCM
topic, with each topic's state; add one for an audience, remove one. messaging.topics does it."""

from django.contrib import messages as flash
from django.db.models import Count
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from audiences.models import Audience
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from messaging.models import AudienceTopic, ChannelConnection
from messaging.topics import topic_enable, topic_remove


@require_http_methods(["GET", "HEAD", "POST"])
@workspace_view(permission=Permission.EDIT_MARKETING)  # reading needs only membership
def push_topics(request):
    status = 200
    error = ""
    if request.method == "POST":
        raw = request.POST.get("audience", "")
        try:
            if not raw.isdigit():
                raise ServiceError("Choose an audience.", field="audience")
            topic = topic_enable(
                workspace=request.workspace, audience_id=int(raw), actor=request.actor
            )
        except ServiceError as service_error:
            error, status = service_error.message, service_error.status
        else:
            flash.success(request, f"Topic {topic.topic} made; its members are being subscribed.")
            return redirect("dashboard:settings_push_topics", workspace_id=request.workspace.id)
    topics = list(
        AudienceTopic.objects.annotate(subscription_count=Count("subscriptions")).order_by("-id")
    )
    names = dict(Audience.objects.values_list("id", "name"))
    with_topic = {topic.audience_id for topic in topics}
    without_topic = sorted(
        ((id_, name) for id_, name in names.items() if id_ not in with_topic),
        key=lambda item: item[1],
    )
    context = {
        "topics": [(topic, names.get(topic.audience_id)) for topic in topics],
        "audiences": without_topic,
        "has_fcm": ChannelConnection.objects.filter(provider="fcm").exists(),
        "error": error,
        "active_section": "settings",
    }
    return render(request, "messaging/topics.html", context, status=status)


@require_POST
@workspace_view(permission=Permission.EDIT_MARKETING)
def push_topic_remove(request, topic_id: int):
    topic = get_object_or_404(AudienceTopic.objects.all(), id=topic_id)
    topic_remove(topic=topic, actor=request.actor)
    flash.success(request, f"Topic {topic.topic} is being removed: its devices are unsubscribed.")
    return redirect("dashboard:settings_push_topics", workspace_id=request.workspace.id)
