from masivo.tenancy.context import reset_scope


class WorkspaceContextMiddleware:
    """Every request starts and ends with no workspace in context.

    API authentication and the dashboard's workspace views set it for the request; resetting
    here means a reused worker thread can never carry one request's workspace into the next.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        reset_scope()
        try:
            return self.get_response(request)
        finally:
            reset_scope()
