"""Request serializers that refuse fields they do not know, and say so in the schema."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import exceptions, serializers


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
