from masivo.tenancy.actors import Actor
from masivo.tenancy.context import all_workspaces, workspace_scope
from masivo.tenancy.roles import Role
from messaging import services
from messaging.models import ChannelConnection

ADMIN = Actor(role=Role.ADMIN, user_id=1)
SENDGRID_KEY = "SG.test-key-id.0123456789abcdefWXYZ"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "0123456789abcdef0123456789abTOKN"
WHATSAPP_FROM = "+14155238886"

SENDGRID_VALUES = {
    "api_key": SENDGRID_KEY,
    "from_email": "News@Acme.example",
    "from_name": "Acme",
    "reply_to": "help@acme.example",
}
TWILIO_VALUES = {
    "account_sid": TWILIO_SID,
    "auth_token": TWILIO_TOKEN,
    "whatsapp_from": WHATSAPP_FROM,
}


def connect(workspace, provider: str, values: dict) -> ChannelConnection:
    with workspace_scope(workspace.id):
        return services.connection_create(
            workspace=workspace, provider=provider, values=values, actor=ADMIN
        )


def stored_column(connection_id: int) -> str:
    """The credentials column as the database holds it."""
    from django.db import connection

    with all_workspaces(reason="test: read the ciphertext"), connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM messaging_channelconnection WHERE id = %s", [connection_id]
        )
        return cursor.fetchone()[0]
