"""Personal data, declared: what each table holds and how to export, redact and erase it.

Every table the kernel's or an addon's migrations create is declared, by the kernel here
(:func:`kernel_models`) and by each addon through ``smsgw_models``: a peewee model carries a
:class:`PersonalData` as ``Meta.privacy``; a table without a model is a :class:`Table`. The
loader collects and validates them at start-up (:func:`collect`, a bad declaration stops it,
naming the addon and the table) and :meth:`core.addons.AddonRegistry.models` hands them out.

The privacy addon walks these declarations and nothing else:

* **export** (right of access, portability): for a subject, the ``export`` columns of the rows
  whose ``subjects`` column names that subject;
* **retention**: the ``content`` columns (message bodies) are blanked once the tenant's retention
  period has passed since ``redact_after`` (and since ``ended``, for rows that end later than they
  start: a message ends when its last recipient is final);
* **erasure**: a subject's rows are deleted, their ``personal`` and ``content`` columns blanked
  together with their subject columns (``redact``: metadata such as states, times and error
  codes stay for counts and invoices), their subject columns replaced by a stable pseudonym
  (``pseudonymise``: the audit trail, which is never edited otherwise), or kept for the reason
  the declaration gives (``keep``: an opt-out must outlive an erasure, or messages resume).
  Erasing a whole tenant drops its schema; public tables are erased by their ``tenant`` column.

``tests/test_datamap.py`` holds every declaration to the database: each declared table and
column exists after migration, and each table in a migrated database is declared.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Whom a row can be about. "tenant": the workspace (a column of a public table, or WHOLE_TABLE
# in a tenant table: every row is the workspace's, exported and erased with it); "user": a member
# of the tenant (users.id); "admin": a platform admin (platform_admin.id); "phone": a phone number
# (E.164) that sent or received an SMS; "actor": an actor string as core.events writes it
# ("user:<id>", "token:<id>", "admin:<id>", "device:<id>").
SUBJECTS = ("tenant", "user", "admin", "phone", "actor")
WHOLE_TABLE = "*"
ERASE = ("delete", "redact", "pseudonymise", "keep", "none")
SECRET_SUFFIXES = ("_hash", "_enc")  # never exported


class DeclarationError(ValueError):
    """A privacy declaration is missing or wrong; the message names the addon and the table."""


@dataclass(frozen=True)
class PersonalData:
    """How one table's rows concern people.

    :param personal: columns holding personal data (addresses, phone numbers, names, IPs ...).
    :param content: columns holding message content (SMS bodies), blanked by retention.
    :param subjects: ``{subject kind: column}``: the column naming each kind of subject a row is
        about (see :data:`SUBJECTS`).
    :param export: columns a subject's data export includes (never hashes or ciphertexts).
    :param redact_after: the time column the retention period of ``content`` counts from. A
        ``content`` entry ``"column.key[.key...]"`` names a value inside a JSON column: only that
        value is blanked (set to JSON ``null``, where the key exists), the rest stays.
    :param ended: for rows whose content must outlive their start: an SQL expression of the
        declaring addon's own code (never input) giving the row's end time, ``NULL`` while the row
        is still going on (never redacted then), e.g. the time a message's last recipient became
        final. It may name the row's table by its name. Empty: ``redact_after`` is the end.
    :param redacted_at: a column retention stamps with the time it blanked the row's content
        (answers then say when); without one, blank content is what marks a redacted row.
    :param erase: what erasing a subject does to its rows (see the module docstring).
    :param why: the reason, when ``erase="keep"``.
    """

    personal: tuple[str, ...] = ()
    content: tuple[str, ...] = ()
    subjects: dict[str, str] = field(default_factory=dict)
    export: tuple[str, ...] = ()
    redact_after: str | None = None
    erase: str = "none"
    why: str = ""
    ended: str = ""
    redacted_at: str | None = None

    @property
    def holds_personal_data(self) -> bool:
        """Rows with personal data or content, or rows about someone (a user's tokens)."""
        return bool(self.personal or self.content or self.subjects)

    def columns(self) -> set[str]:
        """Every column the declaration names."""
        content = {c.split(".", 1)[0] for c in self.content}
        named = {*self.personal, *content, *self.subjects.values(), *self.export} - {WHOLE_TABLE}
        return named | {c for c in (self.redact_after, self.redacted_at) if c}

    def problems(self) -> list[str]:
        """What is wrong with this declaration on its own (empty when nothing is)."""
        out = []
        if self.erase not in ERASE:
            out.append(f"erase must be one of {', '.join(ERASE)}, not {self.erase!r}")
        unknown = set(self.subjects) - set(SUBJECTS)
        if unknown:
            out.append(f"unknown subject kinds {sorted(unknown)} (known: {', '.join(SUBJECTS)})")
        if self.holds_personal_data:
            if not self.subjects:
                out.append("holds personal data but names no subject column: nobody's export or erasure finds it")
            if self.erase == "none":
                out.append("holds personal data but says erase='none'")
        elif self.erase != "none" or self.export:
            out.append("holds no personal data: export and erase stay empty")
        if self.erase == "keep" and not self.why:
            out.append("erase='keep' needs the reason in why")
        if WHOLE_TABLE in [c for k, c in self.subjects.items() if k != "tenant"]:
            out.append(f"only the tenant subject may be {WHOLE_TABLE!r}")
        if self.content and not self.redact_after:
            out.append("holds message content but names no redact_after column for retention")
        if (self.ended or self.redacted_at) and not self.content:
            out.append("ended and redacted_at are for retention of content, and it declares none")
        secret = [c for c in self.export if c.endswith(SECRET_SUFFIXES)]
        if secret:
            out.append(f"exports secrets {secret}")
        return out


NO_PERSONAL_DATA = PersonalData()


@dataclass(frozen=True)
class Table:
    """A table that has no peewee model (the code uses SQL), with its declaration."""

    name: str
    scope: str  # "tenant" or "public"
    privacy: PersonalData


@dataclass(frozen=True)
class DeclaredModel:
    """One declared table, as :meth:`core.addons.AddonRegistry.models` gives it."""

    addon: str  # "core" for the kernel's own tables
    table: str  # unqualified
    scope: str  # "tenant" or "public"
    privacy: PersonalData
    model: type | None = None  # the peewee model, when there is one

    @property
    def qualified(self) -> str:
        return f"public.{self.table}" if self.scope == "public" else self.table


def declare(addon: str, entry) -> DeclaredModel:
    """Check one entry of ``smsgw_models`` (a model class or a :class:`Table`) and describe it."""
    if isinstance(entry, Table):
        declared = DeclaredModel(addon, entry.name, entry.scope, entry.privacy)
        columns = None  # checked against the database by the tests
    elif isinstance(entry, type) and hasattr(entry, "_meta"):
        meta = entry._meta
        privacy = getattr(meta, "privacy", None)
        if privacy is None:
            raise DeclarationError(f"addon {addon!r}: model {entry.__name__} has no Meta.privacy; declare "
                                   f"what it holds with core.datamap.PersonalData (NO_PERSONAL_DATA if nothing)")
        declared = DeclaredModel(addon, meta.table_name, "public" if meta.schema == "public" else "tenant",
                                 privacy, entry)
        columns = {f.column_name for f in meta.sorted_fields}
    else:
        raise DeclarationError(f"addon {addon!r}: smsgw_models gave {entry!r}, which is neither a peewee "
                               f"model nor a core.datamap.Table")
    if not isinstance(declared.privacy, PersonalData):
        raise DeclarationError(f"addon {addon!r}: table {declared.table} declares {declared.privacy!r}, "
                               f"not a core.datamap.PersonalData")
    problems = declared.privacy.problems()
    if declared.scope not in ("tenant", "public"):
        problems.append(f"scope must be 'tenant' or 'public', not {declared.scope!r}")
    tenant_column = declared.privacy.subjects.get("tenant")
    if declared.scope == "tenant" and tenant_column not in (None, WHOLE_TABLE):
        problems.append(f"a tenant table is all its tenant's: its tenant subject is {WHOLE_TABLE!r}, not a column")
    if declared.scope == "public" and tenant_column == WHOLE_TABLE:
        problems.append("a public table names its tenant by a column")
    if columns is not None:
        missing = sorted(declared.privacy.columns() - columns)
        if missing:
            problems.append(f"names columns the model does not have: {', '.join(missing)}")
    if problems:
        raise DeclarationError(f"addon {addon!r}, table {declared.qualified}: " + "; ".join(problems))
    return declared


def collect(registry) -> list[DeclaredModel]:
    """The kernel's tables and every addon's (``smsgw_models``), checked; a table declared twice is an error."""
    found = [declare("core", entry) for entry in kernel_models()]
    for addon, entries in registry.call_each("smsgw_models"):
        found.extend(declare(addon, entry) for entry in entries)
    seen: dict[str, str] = {}
    for d in found:
        if d.qualified in seen:
            raise DeclarationError(f"table {d.qualified} is declared by both {seen[d.qualified]!r} and {d.addon!r}")
        seen[d.qualified] = d.addon
    return found


def kernel_models() -> list:
    """The kernel's own tables: catalogue, platform admins, identity, throttles."""
    from .admins import PlatformAdmin
    from .catalogue import CATALOGUE_MODELS
    from .users import TENANT_MODELS

    def public(name, privacy=NO_PERSONAL_DATA):
        return Table(name, "public", privacy)

    # Throttle keys are hashes of an account and source (core.throttle): linkable to no one.
    return [*CATALOGUE_MODELS, PlatformAdmin, *TENANT_MODELS,
            public("smsgw_public_migration"), public("signing_key"), public("login_failure"), public("signup_attempt"),
            public("periodic_mark"), public("due_work"),  # due_work: workspace id, job name, a time
            public("due_repair_seen"),  # workspace id, a fingerprint of counters and times
            # "Find my workspace" (core.directory): a keyed hash of an address, per workspace.
            public("member_directory", PersonalData(personal=("email_key",), subjects={"tenant": "tenant_id"},
                                                    export=("tenant_id", "seen_at"), erase="delete")),
            public("admin_session", PersonalData(personal=("ip", "user_agent"), subjects={"admin": "admin_id"},
                                                 export=("created_at", "expires_at", "ip", "user_agent"),
                                                 erase="delete")),
            # evidence of an access to a tenant's data, like the audit trail: pseudonymised, never edited
            public("admin_access_grant", PersonalData(
                personal=("ip",), subjects={"admin": "admin_id", "tenant": "tenant_id"},
                export=("tenant_id", "reason", "created_at", "expires_at", "ip"), erase="pseudonymise")),
            # Pending sign-in address changes (core.web.account_pages), keyed by user id in the key.
            Table("settings", "tenant", PersonalData(personal=("value",), subjects={"user": "key"},
                                                     export=("key", "value", "updated_at"), erase="delete"))]
