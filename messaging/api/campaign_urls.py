"""API routes: campaigns (messaging.api.campaigns)."""

from django.urls import path

from messaging.api import campaigns as views

urlpatterns = [
    path("messaging/campaigns", views.CampaignListView.as_view(), name="messaging-campaign-list"),
    path(
        "messaging/campaigns/estimate",
        views.CampaignEstimateView.as_view(),
        name="messaging-campaign-estimate",
    ),
    path(
        "messaging/campaigns/<int:id>",
        views.CampaignDetailView.as_view(),
        name="messaging-campaign-detail",
    ),
    path(
        "messaging/campaigns/<int:id>/estimate",
        views.CampaignSavedEstimateView.as_view(),
        name="messaging-campaign-saved-estimate",
    ),
    path(
        "messaging/campaigns/<int:id>/schedule",
        views.CampaignScheduleView.as_view(),
        name="messaging-campaign-schedule",
    ),
    path(
        "messaging/campaigns/<int:id>/send",
        views.CampaignSendView.as_view(),
        name="messaging-campaign-send",
    ),
    path(
        "messaging/campaigns/<int:id>/pause",
        views.CampaignPauseView.as_view(),
        name="messaging-campaign-pause",
    ),
    path(
        "messaging/campaigns/<int:id>/resume",
        views.CampaignResumeView.as_view(),
        name="messaging-campaign-resume",
    ),
    path(
        "messaging/campaigns/<int:id>/cancel",
        views.CampaignCancelView.as_view(),
        name="messaging-campaign-cancel",
    ),
    path(
        "messaging/campaigns/<int:id>/stats",
        views.CampaignStatsView.as_view(),
        name="messaging-campaign-stats",
    ),
]
