"""Privacy: data export (issue 15, item 2): right of access and portability, self-service.

A member exports *their own* data (``privacy:self``), a Customer or an API token with
``privacy:manage`` *the whole workspace*: from *Account → Privacy* (section ``export``) or
``POST /api/v1/privacy/exports``. The export is built in the background
(:mod:`.export_jobs`, :mod:`.exporter`) and recorded as a privacy request; its progress shows
on the page (a refresh link, and a small poll of ``GET /api/v1/privacy/exports/{id}`` with JS).

The download link is single-purpose and bound: signed (itsdangerous, its own salt) over the
export, the workspace and the credential that asked (the browser session, the API token or
the access token's refresh family); only that credential can use it, only while the export is
ready (24 hours), and every download is recorded in the audit trail before a byte leaves.

An API token is not a person: it can ask for the workspace's export, never for "me".
"""

from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

from core.clock import utcnow
from core.datamap import PersonalData, Table
from core.db import run_catalogue
from core.events import AuditEvent, emit
from core.i18n import N_
from core.openapi import api_errors, date_time, json_body, json_response, path_id, ref, responses, security
from core.permissions import AUTHENTICATED
from core.tasks import crontab
from core.web.base import ApiHandler, PageHandler
from core.web.params import parse_id
from core.web.problem import Problem

from . import export_jobs
from .exporter import ExportSubject
from .page import MANAGE, SELF, Section

SALT = "smsgw-privacy-export-download"
WORKSPACE, ME = "workspace", "me"


# -- who may do what ----------------------------------------------------------------------------

def binding(principal) -> str:
    """The credential a download is bound to: this browser session, this API token, this refresh
    family (a JWT's); another session of the same person is another credential."""
    if principal.via == "session":
        return f"session:{principal.session_id}"
    if principal.via == "jwt" and principal.family:
        return f"jwt:{principal.family}"
    return f"{principal.via}:{principal.kind}:{principal.id}"


def subject_for(principal, scope: str) -> ExportSubject:
    """The subject ``principal`` may export for ``scope`` (``workspace`` or ``me``), or a Problem."""
    if scope == WORKSPACE:
        if not principal.can(MANAGE):
            raise Problem(403, "forbidden", N_("Exporting the whole workspace needs the "
                                               "privacy:manage permission (the account owner, or an "
                                               "API token with that scope)."))
        return ExportSubject("workspace")
    if principal.kind != "user" or not principal.can(SELF):
        raise Problem(403, "forbidden", N_("Only a signed-in member can export their own data; an "
                                           "API token is not a person (it can export the workspace, "
                                           "with privacy:manage)."))
    return ExportSubject("user", principal.id)


def may_see(principal, export: dict) -> bool:
    """The requester sees their export; whoever manages the workspace's privacy sees its workspace exports."""
    return export["requested_by"] == principal.actor or (export["subject"] == "tenant" and principal.can(MANAGE))


def may_download(principal, export: dict) -> bool:
    if export["bound_to"] != binding(principal):
        return False
    needed = MANAGE if export["subject"] == "tenant" else SELF
    return principal.can(needed) and export["requested_by"] == principal.actor


def _signer(platform) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(platform.link_secret, salt=SALT)


def download_path(platform, tenant, export: dict) -> str:
    key = _signer(platform).dumps({"e": export["id"], "t": tenant.slug, "b": export["bound_to"]})
    return f"/account/privacy/exports/{export['id']}/download?key={key}"


def is_ready(export: dict) -> bool:
    return export["state"] == "ready" and export["expires_at"] is not None and export["expires_at"] > utcnow()


def export_json(handler, export: dict, absolute: bool = True) -> dict:
    """An export as the API and the page's poll show it (the page links by path: ``absolute=False``)."""
    ready = is_ready(export)
    url = None
    if ready and may_download(handler.principal, export):
        url = download_path(handler.platform, handler.tenant, export)
        if absolute:
            url = handler.settings_.public_url(handler.tenant.slug) + url
    subject = ExportSubject.from_label(export["subject"])

    def iso(t):
        return t.isoformat().replace("+00:00", "Z") if t else None

    return {"id": export["id"], "scope": WORKSPACE if subject.kind == "workspace" else ME,
            "user_id": subject.user_id, "state": "expired" if export["state"] == "ready" and not ready else export["state"],
            "progress": export["progress"], "rows": export["rows_done"], "size_bytes": export["size_bytes"],
            "created_at": iso(export["created_at"]), "finished_at": iso(export["finished_at"]),
            "expires_at": iso(export["expires_at"]), "downloads": export["downloads"], "download_url": url}


async def start_export(handler, scope: str) -> tuple[dict, bool]:
    """Record an export for the caller and queue its build; ``(row, created)``. A build of the same
    subject this person asked for and that is still running is answered instead of a second one."""
    subject = subject_for(handler.principal, scope)
    principal, tenant, platform = handler.principal, handler.tenant, handler.platform

    def record():
        found = export_jobs.running(tenant.id, subject, principal.actor)
        if found:
            return found, False
        export = export_jobs.create(tenant, subject, principal.actor, binding(principal))
        emit(platform, AuditEvent("privacy.export.requested", tenant.id, tenant.slug, actor=principal.actor,
                                  actor_name=principal.email or principal.name,
                                  target=f"privacy_export:{export['id']}", ip=handler.request.remote_ip or "",
                                  details={"scope": subject.kind}))
        return export, True

    export, created = await run_catalogue(record)
    if created:
        platform.setup_tasks().tasks[export_jobs.TASK](tenant.slug, export["id"])
    return export, created


# -- the page section -----------------------------------------------------------------------------

async def load(handler) -> dict | None:
    principal = handler.principal
    if principal is None or not principal.can(SELF):
        return None
    rows = await run_catalogue(export_jobs.requested_by, handler.tenant.id, principal.actor)
    exports = [export_json(handler, row, absolute=False) for row in rows]
    return {"exports": exports, "can_workspace": principal.can(MANAGE),
            "building": any(e["state"] in ("queued", "building") for e in exports)}


async def post(handler) -> dict | None:
    scope = handler.get_body_argument("scope", ME)
    if scope not in (WORKSPACE, ME):
        _ = handler.gettext()[0]
        return {"scope": _("Choose what to export: your own data or the whole workspace.")}
    export, created = await start_export(handler, scope)
    _ = handler.gettext()[0]
    handler.flash("info", _("Your export is being prepared. This page shows its progress; the download link "
                            "appears here when it is ready.") if created else
                  _("An export you asked for is still being prepared."))
    return None


SECTION = Section(key="export", order=20, template="privacy/export.html", load=load, post=post)


# -- handlers -------------------------------------------------------------------------------------

class ExportsHandler(ApiHandler):
    """``POST /api/v1/privacy/exports``: start an export."""

    permissions = {"POST": AUTHENTICATED}  # which subject needs which permission: subject_for
    addon = "privacy"
    body_schemas = {"POST": "createPrivacyExport"}
    invalid_body_detail = N_("The body is invalid; no export was started.")

    async def post(self):
        body = self.json_body()
        export, created = await start_export(self, body.get("scope", WORKSPACE))
        self.set_header("Location", f"/api/v1/privacy/exports/{export['id']}")
        self.write_json(export_json(self, export), 202 if created else 200)


class ExportHandler(ApiHandler):
    """``GET /api/v1/privacy/exports/{id}``: its state and progress, and the download link when ready."""

    permissions = {"GET": AUTHENTICATED}  # the requester, or privacy:manage for a workspace export: may_see
    addon = "privacy"

    async def get(self, raw):
        export_id = parse_id(raw, "export")
        export = await run_catalogue(export_jobs.get, self.tenant.id, export_id)
        if export is None or not may_see(self.principal, export):
            raise Problem(404, "not-found", N_("There is no such export here."))
        self.set_header("Cache-Control", "no-store")
        self.write_json(export_json(self, export))


class DownloadHandler(PageHandler):
    """``GET /account/privacy/exports/{id}/download?key=…``: the file, to the credential that asked."""

    permission = AUTHENTICATED
    addon = "privacy"

    def wants_json(self) -> bool:
        return bool(self.request.headers.get("Authorization")) or super().wants_json()

    async def get(self, raw):
        export_id = parse_id(raw, "export")
        gone = Problem(404, "not-found", N_("There is no such export here, or this link is not "
                                            "yours: a download link works only in the session (or "
                                            "for the token) that asked for it."))
        try:
            claims = _signer(self.platform).loads(self.get_query_argument("key", ""),
                                                  max_age=export_jobs.KEEP_HOURS * 3600)
        except BadSignature:
            raise gone from None
        export = await run_catalogue(export_jobs.get, self.tenant.id, export_id)
        if (export is None or claims.get("e") != export_id or claims.get("t") != self.tenant.slug
                or claims.get("b") != export["bound_to"] or not may_download(self.principal, export)):
            raise gone
        if not is_ready(export):
            raise Problem(410, "export-expired", N_("This export is no longer available (a download "
                                                    "link works for 24 hours). Ask for a new export "
                                                    "on your privacy page."),
                          title=N_("Export expired"))
        event = AuditEvent("privacy.export.downloaded", self.tenant.id, self.tenant.slug, actor=self.principal.actor,
                           actor_name=self.principal.email or self.principal.name,
                           target=f"privacy_export:{export_id}", ip=self.request.remote_ip or "",
                           user_agent=(self.request.headers.get("User-Agent") or "")[:300],
                           details={"size_bytes": export["size_bytes"]})
        if not await self.run_db(export_jobs.record_download, self.platform, self.tenant, export, event):
            raise Problem(410, "export-expired", N_("This export is no longer available. Ask for a "
                                                    "new one."),
                          title=N_("Export expired"))
        stamp = export["finished_at"].strftime("%Y%m%d-%H%M%S")
        self.set_header("Content-Type", "application/zip")
        self.set_header("Content-Disposition",
                        f'attachment; filename="privacy-export-{self.tenant.slug}-{export_id}-{stamp}.zip"')
        self.set_header("Content-Length", str(export["size_bytes"]))
        self.set_header("Cache-Control", "no-store")
        seq = 0
        while True:
            data = await run_catalogue(export_jobs.chunk, export_id, seq)
            if data is None:
                break
            self.write(data)
            await self.flush()
            seq += 1
        self.finish()


ROUTES = [(r"/api/v1/privacy/exports", ExportsHandler), (r"/api/v1/privacy/exports/([^/]+)", ExportHandler),
          (r"/account/privacy/exports/([^/]+)/download", DownloadHandler)]


def tasks(queue) -> None:
    platform = queue.platform

    def build_export(export_id: int):
        from core.db import current_tenant

        return export_jobs.run_build(platform, current_tenant.get().slug, export_id)

    queue.tenant_task(build_export, name=export_jobs.TASK)
    queue.periodic(crontab(minute="*"), lambda: export_jobs.sweep(platform), name="privacy.export.sweep",
                   per_tenant=False)


# -- the API contract -----------------------------------------------------------------------------

TAG = "Privacy"
EXPORT_ID = path_id("export_id", "export")


def openapi() -> dict:
    return {
        "tags": [{"name": TAG, "description": "Data-subject rights: exports of the workspace's or a member's "
                                              "personal data (schema: docs/privacy-export.md)."}],
        "components": {"schemas": {
            "NewPrivacyExport": {
                "type": "object", "additionalProperties": False,
                "properties": {"scope": {
                    "enum": [WORKSPACE, ME], "default": WORKSPACE,
                    "description": "`workspace`: everything the platform holds about the workspace (needs "
                                   "`privacy:manage`); `me`: the signed-in member's own data (an API token is "
                                   "not a person and cannot ask for it)."}},
            },
            "PrivacyExport": {
                "type": "object",
                "required": ["id", "scope", "user_id", "state", "progress", "rows", "size_bytes", "created_at",
                             "finished_at", "expires_at", "downloads", "download_url"],
                "properties": {
                    "id": {"type": "integer"}, "scope": {"enum": [WORKSPACE, ME]},
                    "user_id": {"type": ["integer", "null"], "description": "For `me`: the member."},
                    "state": {"enum": ["queued", "building", "ready", "failed", "expired"]},
                    "progress": {"type": "integer", "minimum": 0, "maximum": 100},
                    "rows": {"type": "integer", "description": "Rows written so far."},
                    "size_bytes": {"type": ["integer", "null"]},
                    "created_at": date_time(), "finished_at": date_time(null=True),
                    "expires_at": date_time("After this the file is deleted.", null=True),
                    "downloads": {"type": "integer"},
                    "download_url": {"type": ["string", "null"], "format": "uri",
                                     "description": "When ready, and only for the credential that asked for "
                                                    "the export (the same API token or session): a signed link "
                                                    "to the zip, valid until `expires_at`. Every download is "
                                                    "recorded in the audit trail."},
                },
            },
        }},
        "paths": {
            "/api/v1/privacy/exports": {"post": {
                "operationId": "createPrivacyExport", "tags": [TAG], "summary": "Export personal data",
                "description": "Starts building a zip of JSON files (one per table or addon part, with "
                               "`manifest.json` and the JSON Schema `schema.json`; `schema_version` 1) in the "
                               "background; follow it with `GET /api/v1/privacy/exports/{export_id}`. If the same "
                               "export is still being built for you, that one is answered (200).",
                "security": security(MANAGE),
                "requestBody": json_body(ref("NewPrivacyExport"), examples={"workspace": {"scope": "workspace"}}),
                "responses": responses({202: json_response("Queued.", ref("PrivacyExport")),
                                        200: json_response("Already being built.", ref("PrivacyExport"))},
                                       api_errors(write=True, body=True),
                                       (422, "validation-failed", "The body is invalid; no export was started.")),
            }},
            "/api/v1/privacy/exports/{export_id}": {
                "parameters": [EXPORT_ID],
                "get": {
                    "operationId": "getPrivacyExport", "tags": [TAG], "summary": "An export's state",
                    "description": "Its progress and, when ready, the download link (for its requester only).",
                    "security": security(MANAGE),
                    "responses": responses({200: json_response("The export.", ref("PrivacyExport"))}, api_errors(),
                                           (404, "not-found", "There is no such export, or it is not yours.")),
                },
            },
        },
    }


MODELS = [
    Table("privacy_export", "public", PersonalData(
        personal=("subject", "requested_by", "bound_to"), subjects={"tenant": "tenant_id", "actor": "requested_by"},
        export=("subject", "requested_by", "state", "size_bytes", "created_at", "finished_at", "expires_at",
                "downloads", "last_downloaded_at"), erase="delete")),
    # The export files themselves: never exported again (an export of exports), deleted with them.
    Table("privacy_export_chunk", "public", PersonalData(personal=("data",), subjects={"tenant": "tenant_id"},
                                                         erase="delete")),
]
