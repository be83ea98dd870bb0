"""Templates and their versions: create, edit (a new version), archive or delete, preview.

The one owner of `Template` and `TemplateVersion` writes: the API and the dashboard call these.
A version is immutable once written: editing content writes version n+1 and the newest is the
current one, so a message always records the exact content it was rendered from. Changing a
template's name or description writes no version. Editing templates is marketing work
(`Permission.EDIT_MARKETING`: marketers, admins, owners); reading them needs `read`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError, QuerySet, RestrictedError
from django.utils import timezone

from masivo.tenancy.actors import Actor
from masivo.tenancy.errors import Conflict, InvalidInput, NotAllowed
from masivo.tenancy.models import Workspace
from masivo.tenancy.roles import Permission
from messaging.models import Template, TemplateVersion
from messaging.templating import Rendered, content_clean, render_version
from messaging.templating.content import fields_for

MAX_NAME = 200
# Links a preview renders with: the real ones are signed per message by the send pipeline.
PREVIEW_LINKS = {
    "unsubscribe_url": "https://example.com/unsubscribe-preview",
    "preferences_url": "https://example.com/preferences-preview",
}


def _require(actor: Actor) -> None:
    if not actor.can(Permission.EDIT_MARKETING):
        raise NotAllowed("only marketers, admins and owners edit templates")


def _clean_name(name) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("required", field="name")
    name = name.strip()
    if len(name) > MAX_NAME:
        raise InvalidInput(f"at most {MAX_NAME} characters", field="name")
    return name


def _clean_description(description) -> str:
    if not isinstance(description, str):
        raise InvalidInput("must be text", field="description")
    if len(description) > 2000:
        raise InvalidInput("at most 2,000 characters", field="description")
    return description


# Reads


def templates_list(*, channel: str | None = None, include_archived: bool = False) -> QuerySet:
    """The workspace-in-context's templates, newest first, each with `current_number`."""
    templates = Template.objects.annotate(current_number=Max("versions__number")).order_by("-id")
    if channel:
        fields_for(channel)  # an unknown channel is a 400 naming `channel`
        templates = templates.filter(channel=channel)
    if not include_archived:
        templates = templates.filter(is_archived=False)
    return templates


def template_versions(template: Template) -> QuerySet:
    return TemplateVersion.objects.filter(template=template).order_by("-number")


def template_current_version(template: Template) -> TemplateVersion:
    return template_versions(template).select_related("template").first()


def template_version(template: Template, number: int) -> TemplateVersion | None:
    return template_versions(template).select_related("template").filter(number=number).first()


# Writes


def template_create(
    *,
    workspace: Workspace,
    name,
    channel,
    content,
    locales=None,
    description="",
    actor: Actor,
) -> Template:
    """A template and its version 1."""
    _require(actor)
    name = _clean_name(name)
    description = _clean_description(description)
    fields_for(channel)
    content, locales = content_clean(channel, content, locales)
    now = timezone.now()
    try:
        with transaction.atomic():
            template = Template.objects.create(
                workspace=workspace,
                name=name,
                channel=channel,
                description=description,
                created_at=now,
                updated_at=now,
            )
            TemplateVersion.objects.create(
                workspace=workspace,
                template=template,
                number=1,
                content=content,
                locales=locales,
                created_by=actor.label,
                created_at=now,
            )
    except IntegrityError:
        raise Conflict("a template with this name exists", field="name") from None
    template.current_number = 1
    return template


def template_update(
    *,
    template: Template,
    actor: Actor,
    name=None,
    description=None,
    content=None,
    locales=None,
    is_archived=None,
) -> Template:
    """Change what is given. New `content` or `locales` write version n+1 (the one not given is
    carried over from the current version); name, description and archiving write none."""
    _require(actor)
    changes = {}
    if name is not None:
        changes["name"] = _clean_name(name)
    if description is not None:
        changes["description"] = _clean_description(description)
    if is_archived is not None:
        if not isinstance(is_archived, bool):
            raise InvalidInput("must be true or false", field="is_archived")
        changes["is_archived"] = is_archived
    elif template.is_archived and (content is not None or locales is not None):
        raise Conflict("the template is archived; unarchive it to edit its content")
    now = timezone.now()
    try:
        with transaction.atomic():
            # The row lock orders concurrent edits: each gets its own next number.
            locked = Template.objects.select_for_update().get(id=template.id)
            if content is not None or locales is not None:
                current = template_current_version(locked)
                new_content, new_locales = content_clean(
                    locked.channel,
                    current.content if content is None else content,
                    current.locales if locales is None else locales,
                )
                TemplateVersion.objects.create(
                    workspace_id=locked.workspace_id,
                    template=locked,
                    number=current.number + 1,
                    content=new_content,
                    locales=new_locales,
                    created_by=actor.label,
                    created_at=now,
                )
            for field, value in changes.items():
                setattr(locked, field, value)
            locked.updated_at = now
            locked.save(update_fields=[*changes, "updated_at"])
    except IntegrityError:
        raise Conflict("a template with this name exists", field="name") from None
    locked.current_number = template_versions(locked).aggregate(n=Max("number"))["n"]
    return locked


@dataclass(frozen=True)
class Removal:
    is_deleted: bool  # False: archived, because messages used it


def template_remove(*, template: Template, actor: Actor) -> Removal:
    """Delete a template no message used; archive one that messages used (they keep pointing
    at its versions, so those stay)."""
    _require(actor)
    try:
        with transaction.atomic():
            template.delete()
        return Removal(is_deleted=True)
    except (ProtectedError, RestrictedError):
        Template.objects.filter(id=template.id).update(is_archived=True, updated_at=timezone.now())
        return Removal(is_deleted=False)


def template_preview(
    *,
    template: Template,
    customer,
    version_number: int | None = None,
    event: dict | None = None,
    locale: str | None = None,
) -> Rendered:
    """Render a version (the current one unless `version_number`) for `customer`, as a send
    would, with preview links. Raises TemplateRenderError with the reason."""
    if version_number is None:
        version = template_current_version(template)
    else:
        version = template_version(template, version_number)
        if version is None:
            raise InvalidInput("this template has no such version", field="version")
    if event is not None and not isinstance(event, dict):
        raise InvalidInput("must be an object of event properties", field="event")
    return render_preview_version(
        version, workspace=template.workspace, customer=customer, event=event, locale=locale
    )


def render_preview_version(
    version: TemplateVersion, *, workspace, customer, event=None, locale=None
) -> Rendered:
    """Render `version` (saved, or an editor's unsaved draft) as a preview: preview links."""
    return render_version(
        version,
        customer=customer,
        workspace=workspace,
        event=event,
        links=PREVIEW_LINKS,
        locale=locale or None,
    )


def template_test_send(
    *,
    template: Template,
    customer,
    actor: Actor,
    to: str | None = None,
    version_number: int | None = None,
    event: dict | None = None,
):
    """Send a version (the current one by default) rendered for `customer` now, as a
    transactional message, to `to` (an email address or E.164 phone, for those channels) or
    else to the customer's own address, devices or app. Goes through the outbox and the
    sender like any message (its origin says `test`); returns the outbox's Enqueued."""
    from messaging import outbox
    from messaging.policy.suppressions import suppression_address

    _require(actor)
    if template.is_archived:
        raise Conflict("an archived template cannot be test-sent", field="template")
    if to is not None:
        if template.channel not in ("email", "whatsapp", "sms"):
            raise InvalidInput(
                f"a {template.get_channel_display()} test goes to the customer's own "
                + ("devices" if template.channel == "push" else "app"),
                field="to",
            )
        try:
            to = suppression_address(template.channel, to)
        except InvalidInput as error:
            raise InvalidInput(error.message, field="to") from None
    version = template_current_version(template)
    if version_number is not None:
        version = template_version(template, version_number)
        if version is None:
            raise InvalidInput("no such version of this template", field="version")
    return outbox.message_enqueue(
        customer=customer,
        channel=template.channel,
        kind="transactional",
        dedupe_key=f"test:{uuid.uuid4().hex}",
        origin={"source": "test", "by": actor.label},
        template=template,
        template_version=version,
        render_input={"event": outbox.clean_event(event)} if event else {},
        test_address=to,
    )
