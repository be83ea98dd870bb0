"""Request serializers that refuse fields they do not know, and say so in the schema."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import exceptions, serializers

from masivo.tenancy.errors import InvalidInput


# A body with a field the serializer does not declare is a 400 naming it: a misspelt field
# silently ignored would look saved. The schema says `additionalProperties: false`. (No
# docstring: drf-spectacular would make it every subclass's description.)
class RefusesUnknownFields(serializers.Serializer):
    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(str(name) for name in data if name not in self.fields)
            if unknown:
                raise exceptions.ValidationError({name: ["unknown field"] for name in unknown})
        return super().to_internal_value(data)


class RefusesUnknownFieldsScheme(OpenApiSerializerExtension):
    target_class = RefusesUnknownFields
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False}


class StrictCharField(serializers.CharField):
    """A text field that takes only JSON strings: DRF's CharField reads 3 as "3", which the
    schema (`type: string`) does not allow, so a number, boolean or list is a 400 naming it."""

    default_error_messages = {"not_a_string": "must be a string"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


def refuse_non_strings(data, names) -> None:
    """The same for a body the serializer only documents (the service validates it): each of
    `names` present in `data` is a string or null, else a 400 naming the first that is not."""
    if not isinstance(data, dict):
        return
    for name in names:
        if name in data and not isinstance(data[name], str | None):
            raise InvalidInput("must be a string", field=name)
