from rest_framework import exceptions, pagination


class CursorPagination(pagination.CursorPagination):
    """The API's cursor pagination: `?limit=N` (1 or more; above the maximum it is the maximum)
    and `?cursor=` from an earlier page's `next` or `previous`. Either one malformed is a 400
    naming it: DRF would answer a bad cursor with 404 and ignore a bad limit."""

    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        size = int(raw) if raw.isascii() and raw.isdigit() else 0
        if size < 1:
            raise exceptions.ValidationError(
                {self.page_size_query_param: ["a whole number, 1 or more"]}
            )
        return min(size, self.max_page_size)

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound as error:
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["the cursor of an earlier page's next or previous link"]}
            ) from error

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
                parameter["description"] = f"page size (default {self.page_size}, at most "
                parameter["description"] += f"{self.max_page_size}: more is the maximum)"
        return parameters


class CreatedCursorPagination(CursorPagination):
    """Newest first; ids grow with creation, so they make a stable, unique cursor."""

    ordering = "-id"
