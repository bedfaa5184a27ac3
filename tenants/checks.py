from django.core.checks import Error, Tags, register
from django.core.exceptions import ImproperlyConfigured

from tenants.throttling import trusted_proxies


@register(Tags.security)
def trusted_proxies_parse(app_configs, **kwargs) -> list[Error]:
    """A mistyped proxy address is reported at start, not at the first login."""
    try:
        trusted_proxies()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="conduit.E010")]
    return []
