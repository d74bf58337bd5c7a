"""Mobile addon hooks: the app's API, the Connect page, the enrollment-token command."""

from core.addons import hookimpl

from . import api, inbox, pages, service
from .models import MODELS


@hookimpl
def smsgw_models():
    return MODELS


@hookimpl
def smsgw_routes():
    return api.ROUTES + inbox.ROUTES + pages.ROUTES


@hookimpl
def smsgw_openapi():
    from . import openapi

    return openapi.fragment()


@hookimpl
def smsgw_cli(subparsers):
    from . import cli

    cli.cli(subparsers)


@hookimpl
def smsgw_security_schemes(register):
    register("enrollmentToken", {
        "type": "http", "scheme": "bearer", "bearerFormat": "enrollment token (sge_…)",
        "description": "`Authorization: Bearer sge_<workspace>_…`: the Android app's *Private Token*. It only "
                       "enrolls phones (`POST /api/mobile/v1/device`).",
    })
    register("appLogin", {
        "type": "http", "scheme": "basic",
        "description": "The login and password the app was given when it joined with the private token. They "
                       "only enroll more phones, as far as that token still allows (`POST /api/mobile/v1/device`, "
                       "`GET /api/mobile/v1/user/code`); they are not an API credential.",
    })


@hookimpl
def smsgw_configure(platform):
    from . import runtime

    runtime.PLATFORM[0] = platform


@hookimpl
def smsgw_device_recall(tenant, device_id, ids):
    from . import runtime

    return service.recall(runtime.PLATFORM[0], tenant, device_id, ids)
