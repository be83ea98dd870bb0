"""factory_boy factories. `TENANT_FACTORIES` maps each tenant model to a factory that makes one
in a given workspace: the cross-tenant route walk uses it to plant objects in another workspace."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from audiences.models import Audience, ListUpload
from destinations.models import AudienceSync, Destination
from journeys.models import Enrollment, Journey, JourneyVersion
from masivo.tenancy import keys
from masivo.tenancy.models import ApiKey, Invitation, Member, Organization, Workspace
from masivo.tenancy.roles import Role
from messaging.models import (
    AudienceTopic,
    Campaign,
    ChannelConnection,
    Message,
    Suppression,
    Template,
    TemplateVersion,
)
from profiles.models import Customer, CustomerImport


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.SelfAttribute("username")
    first_name = "Ana"
    last_name = factory.Sequence(lambda n: f"Tester{n}")
    password = factory.django.Password("correct horse battery staple")


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Organization {n}")
    slug = factory.Sequence(lambda n: f"organization-{n}")


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    organization = factory.SubFactory(OrganizationFactory)
    name = factory.Sequence(lambda n: f"Workspace {n}")


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    organization = factory.SubFactory(OrganizationFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MARKETER


class InvitationFactory(factory.django.DjangoModelFactory):
    """An open invitation. Its link is unknown (the hash is of a made-up token): tests that
    follow the link send a real one with `invitation_send` and read it from the email."""

    class Meta:
        model = Invitation

    organization = factory.SubFactory(OrganizationFactory)
    email = factory.Sequence(lambda n: f"invitee{n}@example.com")
    role = Role.VIEWER
    token_hash = factory.Sequence(lambda n: keys.hash_token(f"test-invitation-{n}"))
    created_at = factory.LazyFunction(timezone.now)
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(days=7))


class ApiKeyFactory(factory.django.DjangoModelFactory):
    """Needs the workspace in context (tenancy_apikey is under row-level security)."""

    class Meta:
        model = ApiKey

    kind = ApiKey.Kind.SECRET
    name = factory.Sequence(lambda n: f"Key {n}")
    role = Role.ADMIN
    prefix = "msv_sk_TEST"
    token_hash = factory.Sequence(lambda n: keys.hash_token(f"test-token-{n}"))


class CustomerFactory(factory.django.DjangoModelFactory):
    """Needs the workspace in context."""

    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"user-{n}")
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Lucía"
    last_name = factory.Sequence(lambda n: f"García {n}")


class CustomerImportFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerImport

    filename = "customers.csv"
    mapping = factory.LazyFunction(lambda: {"external_id": "external_id"})
    created_by = "test"


class AudienceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Audience

    name = factory.Sequence(lambda n: f"Audience {n}")
    rules = factory.LazyFunction(
        lambda: {"version": 1, "root": {"profile": {"field": "country", "op": "eq", "value": "MX"}}}
    )
    profile_fields = factory.LazyFunction(lambda: ["country"])


class ListUploadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ListUpload

    audience = factory.SubFactory(
        AudienceFactory, workspace=factory.SelfAttribute("..workspace"), kind="list", rules=None
    )
    filename = "list.csv"
    identifier = "email"
    created_by = "test"


class ChannelConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelConnection

    provider = ChannelConnection.Provider.SENDGRID
    settings = factory.LazyFunction(lambda: {"from_email": "news@example.com"})
    credentials = factory.LazyFunction(lambda: {"api_key": "SG.factory.0123456789abcdef"})
    credential_hints = factory.LazyFunction(lambda: {"api_key": "cdef"})


class AudienceTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AudienceTopic

    audience_id = factory.Sequence(lambda n: 900_000 + n)
    topic = factory.LazyAttribute(lambda o: f"{o.workspace.id}_audience_{o.audience_id}")


class TemplateFactory(factory.django.DjangoModelFactory):
    """An email template with its first version."""

    class Meta:
        model = Template
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Template {n}")
    channel = "email"

    @factory.post_generation
    def version(template, create, extracted, **kwargs):
        if create:
            TemplateVersion.objects.create(
                workspace=template.workspace,
                template=template,
                number=1,
                content=extracted
                or {"subject": "Hi {{ customer.first_name }}", "html": "<p>Hello</p>", "text": ""},
            )


class MessageFactory(factory.django.DjangoModelFactory):
    """A message already handed over (status sent)."""

    class Meta:
        model = Message

    customer = factory.SubFactory(CustomerFactory, workspace=factory.SelfAttribute("..workspace"))
    channel = "in_app"
    kind = "marketing"
    dedupe_key = factory.Sequence(lambda n: f"test:{n}")
    origin = factory.LazyFunction(lambda: {"source": "test"})
    status = "sent"
    sent_at = factory.LazyFunction(timezone.now)
    payload = factory.LazyFunction(lambda: {"title": "Hello", "body": "A message"})


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    channel = "email"
    address = factory.Sequence(lambda n: f"bounced{n}@example.com")
    reason = Suppression.Reason.MANUAL


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    channel = "email"


class DestinationFactory(factory.django.DjangoModelFactory):
    """A Meta destination (config and credentials as its connector takes them)."""

    class Meta:
        model = Destination

    kind = "meta"
    name = factory.Sequence(lambda n: f"Meta {n}")
    key = factory.Sequence(lambda n: f"meta-{n}")
    config = factory.LazyFunction(lambda: {"ad_account_id": "1234567890"})
    credentials = factory.LazyFunction(lambda: {"access_token": "EAAB-test"})


class WebhookEndpointFactory(DestinationFactory):
    kind = "webhook"
    name = factory.Sequence(lambda n: f"Webhook {n}")
    key = factory.Sequence(lambda n: f"webhook-{n}")
    config = factory.LazyFunction(
        lambda: {"url": "https://hooks.example.com/masivo", "topics": ["event.tracked"]}
    )
    credentials = factory.LazyFunction(lambda: {"secrets": ["whsec_dGVzdHNlY3JldHRlc3RzZWNyZXQ="]})


class AudienceSyncFactory(factory.django.DjangoModelFactory):
    """Needs the workspace in context: its audience and destination are made in it."""

    class Meta:
        model = AudienceSync

    audience = factory.LazyAttribute(lambda o: AudienceFactory(workspace=o.workspace))
    destination = factory.LazyAttribute(lambda o: DestinationFactory(workspace=o.workspace))
    remote_audience_id = factory.Sequence(lambda n: f"2385000000000{n}")
    identifiers = factory.LazyFunction(lambda: ["email"])


class JourneyFactory(factory.django.DjangoModelFactory):
    """A draft journey with its first (draft) version, as journeys.services makes one."""

    class Meta:
        model = Journey
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Journey {n}")

    @factory.post_generation
    def draft(journey, create, extracted, **kwargs):
        if create:
            JourneyVersion.objects.create(workspace_id=journey.workspace_id, journey=journey,
                                          number=1, graph={})  # fmt: skip


class EnrollmentFactory(factory.django.DjangoModelFactory):
    """Needs the workspace in context: its journey and customer are made in it."""

    class Meta:
        model = Enrollment

    journey = factory.LazyAttribute(lambda o: JourneyFactory(workspace=o.workspace))
    version = factory.LazyAttribute(lambda o: JourneyVersion.objects.get(journey=o.journey))
    customer_id = factory.LazyAttribute(lambda o: CustomerFactory(workspace=o.workspace).id)
    current_step = "start"


def make_in_workspace(model, workspace: Workspace):
    """One object of `model` belonging to `workspace` (call inside its workspace_scope)."""
    if model is Member:
        return MemberFactory(organization=workspace.organization)
    if model is Invitation:
        return InvitationFactory(organization=workspace.organization)
    return TENANT_FACTORIES[model](workspace=workspace)


TENANT_FACTORIES = {
    AudienceTopic: AudienceTopicFactory,
    Campaign: CampaignFactory,
    Message: MessageFactory,
    Suppression: SuppressionFactory,
    Template: TemplateFactory,
    ApiKey: ApiKeyFactory,
    Customer: CustomerFactory,
    CustomerImport: CustomerImportFactory,
    Audience: AudienceFactory,
    ListUpload: ListUploadFactory,
    ChannelConnection: ChannelConnectionFactory,
    Destination: DestinationFactory,
    AudienceSync: AudienceSyncFactory,
    Journey: JourneyFactory,
    Enrollment: EnrollmentFactory,
}
