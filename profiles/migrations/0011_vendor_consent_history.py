"""Consent history for vendors and the consent string: a row's `purpose` is a consent purpose,
`vendor` (the destination key in the new `vendor` column) or `consent_string` (its version in
the new `consent_string_version` column). Both columns are empty on the existing rows."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0010_consent_vendors_processed_events"),
    ]

    operations = [
        migrations.AddField(
            model_name="consentchange",
            name="vendor",
            field=models.CharField(blank=True, db_default="", default="", max_length=64),
        ),
        migrations.AddField(
            model_name="consentchange",
            name="consent_string_version",
            field=models.CharField(blank=True, db_default="", default="", max_length=20),
        ),
        migrations.AlterField(
            model_name="consentchange",
            name="purpose",
            field=models.CharField(
                choices=[
                    ("email_marketing", "Email marketing"),
                    ("push_notifications", "Push notifications"),
                    ("whatsapp_marketing", "WhatsApp marketing"),
                    ("sms_marketing", "SMS marketing"),
                    ("advertising", "Advertising audiences"),
                    ("behavioral_campaigns", "Behavioral campaigns"),
                    ("link_tracking", "Link tracking"),
                    ("vendor", "Vendor"),
                    ("consent_string", "Consent string"),
                ],
                max_length=24,
            ),
        ),
    ]
