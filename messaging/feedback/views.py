"""Delivery feedback's public endpoints (no sign-in): each request proves itself by the
provider's signature (webhooks) or a signed token (tracking), and acts only inside the
workspace that proof names. Errors answer JSON `{"detail", "code"}`, never a 500 for bad input."""

from __future__ import annotations

import hmac
import re

from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from masivo.tenancy.context import workspace_scope
from masivo.tenancy.errors import ServiceError
from masivo.tenancy.models import Workspace
from messaging import tracking
from messaging.feedback import sendgrid, twilio
from messaging.feedback.links import public_base_url
from messaging.models import ChannelConnection

TOKEN = re.compile(r"([1-9][0-9]{0,17})-[0-9a-f]{40}")
NO_SUCH_WEBHOOK = "no such webhook: copy the URL again from Settings, Channels"


def _error(error: ServiceError) -> JsonResponse:
    body = {"detail": error.message, "code": error.code}
    if error.field:
        body["field"] = error.field
    return JsonResponse(body, status=error.status)


def _not_found(detail: str = NO_SUCH_WEBHOOK) -> JsonResponse:
    return JsonResponse({"detail": detail, "code": "not_found"}, status=404)


def _connection(token: str, provider: str) -> ChannelConnection | None:
    """The connection (of the workspace the token names) whose webhook token this is."""
    match = TOKEN.fullmatch(token)
    if not match:
        return None
    workspace_id = int(match.group(1))
    with workspace_scope(workspace_id):
        connection = ChannelConnection.objects.filter(provider=provider).first()
    if connection is None or not hmac.compare_digest(connection.webhook_token, token):
        return None
    return connection


@csrf_exempt
@require_POST
def sendgrid_events(request, token: str):
    connection = _connection(token, ChannelConnection.Provider.SENDGRID)
    if connection is None:
        return _not_found()
    now = timezone.now()
    try:
        text = sendgrid.verify(
            connection,
            body=request.body,
            signature=request.headers.get(sendgrid.SIGNATURE_HEADER, ""),
            timestamp=request.headers.get(sendgrid.TIMESTAMP_HEADER, ""),
            now=now,
        )
        events = sendgrid.parse(text)
        with workspace_scope(connection.workspace_id):
            workspace = Workspace.objects.get(id=connection.workspace_id)
            outcome = sendgrid.process(workspace=workspace, events=events, now=now)
    except ServiceError as error:
        return _error(error)
    return JsonResponse(outcome.as_dict())


def _twilio_verified(request, token: str):
    connection = _connection(token, ChannelConnection.Provider.TWILIO)
    if connection is None:
        return None, _not_found()
    url = public_base_url(request) + request.get_full_path()
    try:
        twilio.verify(
            connection,
            url=url,
            params=request.POST,
            signature=request.headers.get(twilio.SIGNATURE_HEADER, ""),
        )
    except ServiceError as error:
        return None, _error(error)
    return connection, None


@csrf_exempt
@require_POST
def twilio_status(request, token: str):
    connection, refusal = _twilio_verified(request, token)
    if refusal is not None:
        return refusal
    try:
        with workspace_scope(connection.workspace_id):
            outcome = twilio.process_status(
                workspace=Workspace.objects.get(id=connection.workspace_id),
                message_param=request.GET.get("message", ""),
                form=request.POST,
                now=timezone.now(),
            )
    except ServiceError as error:
        return _error(error)
    return JsonResponse(outcome.as_dict())


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


@csrf_exempt
@require_POST
def twilio_inbound(request, token: str):
    connection, refusal = _twilio_verified(request, token)
    if refusal is not None:
        return refusal
    with workspace_scope(connection.workspace_id):
        twilio.process_inbound(
            workspace=Workspace.objects.get(id=connection.workspace_id),
            form=request.POST,
            now=timezone.now(),
        )
    # No reply: Twilio sends nothing back to the customer.
    return HttpResponse(EMPTY_TWIML, content_type="text/xml")


@require_GET
def click(request, token: str):
    target = tracking.record_click(token)
    if target is None:
        return _not_found("no such link")
    response = HttpResponseRedirect(target)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def open_pixel(request, token: str):
    if not tracking.record_open(token):
        return _not_found("no such image")
    response = HttpResponse(tracking.PIXEL_GIF, content_type="image/gif")
    response["Cache-Control"] = "no-store, max-age=0"
    return response
