"""One error body for every API error: {"detail": ..., "errors": {...}} (SPEC section 6)."""

import logging

from django.core.exceptions import DisallowedHost, PermissionDenied, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from config.common.exceptions import Conflict

logger = logging.getLogger(__name__)


def _django_validation_errors(exc: DjangoValidationError) -> dict:
    if hasattr(exc, "error_dict"):
        return {field: [m for e in errs for m in e.messages] for field, errs in exc.error_dict.items()}
    return {"non_field_errors": exc.messages}


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, Conflict):
        return Response({"detail": exc.message, "errors": exc.errors}, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(_django_validation_errors(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None  # Django's handler500 answers, in the same format.
    if isinstance(exc, exceptions.ValidationError):
        errors = response.data if isinstance(response.data, dict) else {"non_field_errors": response.data}
        response.data = {"detail": _("Invalid input."), "errors": errors}
    else:
        data = response.data
        detail = data.get("detail", data) if isinstance(data, dict) else data
        response.data = {"detail": detail, "errors": {}}
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django refuses before any view (a Host header it does not serve, a suspicious one)."""
    if _is_api(request):
        detail = _("Bad request.")
        if isinstance(exception, DisallowedHost):
            detail = _("The Host header names a host this server does not answer for.")
        return JsonResponse({"detail": detail, "errors": {}}, status=400)
    from django.views.defaults import bad_request

    return bad_request(request, exception or SuspiciousOperation())


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": _("Not found."), "errors": {}}, status=404)
    from django.views.defaults import page_not_found

    return page_not_found(request, exception or Http404())


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": _("Permission denied."), "errors": {}}, status=403)
    from django.views.defaults import permission_denied

    return permission_denied(request, exception or PermissionDenied())


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": _("Internal server error."), "errors": {}}, status=500)
    from django.views.defaults import server_error

    return server_error(request)
