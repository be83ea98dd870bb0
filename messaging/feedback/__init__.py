"""Delivery feedback and engagement: providers' webhooks (SendGrid's Event Webhook, Twilio's
status callbacks and inbound messages), and the shared recording of what they report
(`engagement.record_engagement`). Email open and click tracking is `messaging.tracking`."""
