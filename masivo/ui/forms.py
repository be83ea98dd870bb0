"""Helpers for dashboard forms. Forms check shapes only; the services own every rule."""

from django import forms

from masivo.tenancy.errors import ServiceError


def as_sentence(message: str) -> str:
    """Services word errors in lower case; start with a capital unless that would change a
    value (an email address, a quoted name)."""
    first_word = message.split(" ", 1)[0]
    return message[:1].upper() + message[1:] if first_word.isalpha() else message


def add_service_error(form: forms.Form, error: ServiceError) -> None:
    """Show a service's refusal on the field it names, or on the whole form."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, as_sentence(error.message))
