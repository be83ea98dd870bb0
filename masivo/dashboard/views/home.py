from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_safe

from audiences import selectors as audience_selectors
from masivo.tenancy import selectors
from masivo.tenancy.roles import Permission
from masivo.ui.decorators import workspace_view
from profiles import selectors as profile_selectors

AUDIENCES_SHOWN = 6
RECENT_SHOWN = 5
CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 480, 96, 2
TICKS_HEIGHT = 12  # the hour labels under the bars
# Events waiting longer than this for the follow-up mean workers are behind or down.
LAG_WARNING = timedelta(minutes=5)


@require_safe
@login_required
def home(request):
    """Open the user's first workspace, or explain why there is none."""
    workspace = selectors.workspaces_for_user(user=request.user).first()
    if workspace is not None:
        return redirect("dashboard:overview", workspace_id=workspace.id)
    return render(request, "dashboard/no_workspace.html")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    title: str


def hourly_bars(counts: dict[datetime, int], *, start: datetime, hours: int) -> list[Bar]:
    """One SVG bar per hour from `start` (the current time zone's midnight), drawn server-side."""
    slots = [start + timedelta(hours=hour) for hour in range(hours)]
    values = [counts.get(slot, 0) for slot in slots]
    high = max(values, default=0) or 1
    width = CHART_WIDTH / 24
    bars = []
    for index, (slot, value) in enumerate(zip(slots, values, strict=True)):
        height = round(value / high * (CHART_HEIGHT - 4), 1) if value else 0
        title = f"{slot:%H}:00 to {slot:%H}:59: {value:,} event{'s' if value != 1 else ''}"
        bars.append(
            Bar(round(index * width, 1), CHART_HEIGHT - height, width - BAR_GAP, height, title)
        )
    return bars


def _ingestion_lag(now: datetime) -> timedelta | None:
    oldest = profile_selectors.oldest_unprocessed_event_received_at()
    return max(now - oldest, timedelta(0)) if oldest else None


def duration_short(duration: timedelta) -> str:
    """12 s, 4 min, 3 h 5 min, 2 d 4 h."""
    seconds = int(duration.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min" if minutes % 60 else f"{hours} h"
    return f"{days} d {hours % 24} h" if hours % 24 else f"{days} d"


@require_safe
@workspace_view(permission=Permission.READ)
def overview(request):
    """The workspace at a glance; the first steps while it holds no customers or audiences."""
    now = timezone.localtime()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    by_hour = profile_selectors.events_received_by_hour(since=midnight)
    audiences = audience_selectors.audiences_by_size()
    lag = _ingestion_lag(now)
    context = {
        "customers_count": profile_selectors.customers_count(),
        "events_today": sum(by_hour.values()),
        "event_bars": hourly_bars(by_hour, start=midnight, hours=now.hour + 1),
        "chart": {
            "width": CHART_WIDTH,
            "height": CHART_HEIGHT,
            "full_height": CHART_HEIGHT + TICKS_HEIGHT,
            "ticks": [
                {"x": round(hour * CHART_WIDTH / 24, 1), "label": f"{hour:02}:00"}
                for hour in (0, 6, 12, 18)
            ],
        },
        "audiences_count": audiences.count(),
        "audiences": list(audiences[:AUDIENCES_SHOWN]),
        "imports": list(profile_selectors.customer_imports_list().defer("mapping")[:RECENT_SHOWN]),
        "list_uploads": audience_selectors.list_uploads_latest(limit=RECENT_SHOWN),
        "recalculations": audience_selectors.recalculations_latest(limit=RECENT_SHOWN),
        "ingestion_lag": lag and duration_short(lag),
        "is_lagging": lag is not None and lag > LAG_WARNING,
    }
    context["is_new_workspace"] = not context["customers_count"] and not context["audiences"]
    return render(request, "dashboard/overview.html", context)
