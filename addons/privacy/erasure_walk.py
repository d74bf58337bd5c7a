"""Erasure by declaration: what deleting a member or a whole workspace does to each table.

Walks ``registry.models()`` (core/datamap.py) and nothing else, so a third-party addon's tables
are covered by declaring them. For a **member** (``forget_member``): in the workspace's tables,
rows whose ``user`` column is the member or whose ``actor`` column is ``user:<id>`` are deleted
(``delete``), cut loose from them (``redact``: the subject column is cleared and the ``personal``
columns blanked; ``content`` stays, because the messages a member sent are the workspace's),
pseudonymised, or kept (``keep``); in public tables, their ``actor`` rows are pseudonymised. For a
**workspace** (``forget_workspace_shared``): public tables are erased by their ``tenant`` column
(the schema itself is dropped by :meth:`core.tenancy.TenantService.delete`).

A public table the serving role may not update (the append-only audit trail) is pseudonymised
through a SECURITY DEFINER function ``<prefix>_pseudonymise_<table>(tenant_id, actor, addresses,
pseudonyms, salt)`` that its owner provides (this addon's public migration 0030 provides the audit
trail's).
"""

from __future__ import annotations

import hashlib
import secrets

from core.datamap import WHOLE_TABLE
from core.db import app_db, as_serving_role, quote_ident
from core.throttle import account_key

EMAIL_RE = r"[^\s@\"<>(),;:]+@[^\s@\"<>(),;:]+"
PHONE_RE = r"\+[0-9]{7,15}"


def pseudonym(salt: str, value: str, kind: str = "person") -> str:
    """A stable stand-in for ``value`` within one erasure (``salt`` is random and never stored)."""
    return f"{kind}-" + hashlib.sha256(f"{salt}\0{value.lower()}".encode()).hexdigest()[:12]


def _columns(schema_sql: str) -> dict[str, dict[str, str]]:
    """``{table: {column: data type}}`` of a schema (``current_schema()`` or ``'public'``)."""
    out: dict[str, dict[str, str]] = {}
    for table, column, kind in app_db.execute_sql(
            f"SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = {schema_sql}"):
        out.setdefault(table, {})[column] = kind
    return out


def _blank(column: str, kind: str) -> str:
    """An SQL expression that empties ``column`` of type ``kind`` (NULL where allowed is not known: an empty value)."""
    if kind in ("jsonb", "json"):
        return "'{}'"
    if kind == "ARRAY":
        return "'{}'"
    if kind in ("text", "character varying"):
        return "''"
    return "NULL"


def _scrub(column: str, kind: str) -> str:
    """An SQL expression that replaces e-mail addresses and phone numbers inside ``column``."""
    q = quote_ident(column)
    if kind in ("jsonb", "json"):
        return (f"regexp_replace(regexp_replace({q}::text, '{EMAIL_RE}', 'erased', 'g'), "
                f"'{PHONE_RE}', 'erased-number', 'g')::{kind}")
    if kind in ("text", "character varying"):
        return f"regexp_replace(regexp_replace({q}, '{EMAIL_RE}', 'erased', 'g'), '{PHONE_RE}', 'erased-number', 'g')"
    return q


def _match(column: str, kind: str, value) -> tuple[str, tuple]:
    """A condition for "``column`` names this subject": equal, or (text keys such as
    ``account.email-change.<id>``) ending in ``.<id>`` / ``:<id>``."""
    q = quote_ident(column)
    if kind in ("text", "character varying") and isinstance(value, int):
        return f"({q} = %s OR {q} ~ %s)", (str(value), rf"[.:]{value}$")
    return f"{q} = %s", (value,)


def forget_member(platform, user_id: int, email: str, salt: str) -> dict:
    """Inside the member's workspace transaction: erase or pseudonymise the member everywhere their
    data is declared. Returns ``{table: rows touched}``."""
    subjects = {"user": user_id, "actor": f"user:{user_id}"}
    touched: dict[str, int] = {}
    tenant_columns = _columns("current_schema()")
    for d in platform.registry.models():
        if d.scope != "tenant" or d.privacy.erase in ("keep", "none"):
            continue
        cols = tenant_columns.get(d.table)
        if cols is None:
            continue
        for kind, column in d.privacy.subjects.items():
            if kind not in subjects or column == WHOLE_TABLE or column not in cols:
                continue
            where, params = _match(column, cols[column], subjects[kind])
            if d.privacy.erase == "delete":
                cur = app_db.execute_sql(f"DELETE FROM {quote_ident(d.table)} WHERE {where}", params)
            else:  # redact / pseudonymise: the row stays the workspace's, no longer theirs
                stand_in = pseudonym(salt, str(subjects[kind]), "erased-user")
                value = "NULL" if cols[column] not in ("text", "character varying") else "%s"
                sets = [f"{quote_ident(column)} = {value}"] + [
                    f"{quote_ident(c)} = {_blank(c, cols[c]) if d.privacy.erase == 'redact' else _scrub(c, cols[c])}"
                    for c in d.privacy.personal if c in cols and c != column]
                cur = app_db.execute_sql(f"UPDATE {quote_ident(d.table)} SET {', '.join(sets)} WHERE {where}",
                                         ((stand_in,) if value == "%s" else ()) + params)
            touched[d.table] = touched.get(d.table, 0) + cur.rowcount
    return touched


def forget_member_shared(platform, tenant, user_id: int, email: str, salt: str) -> dict:
    """Inside the workspace transaction: the member in public tables (their ``actor`` rows
    pseudonymised, their address replaced wherever the workspace's rows name it) and their
    login throttles."""
    touched: dict[str, int] = {}
    actor = f"user:{user_id}"
    with as_serving_role():
        for d in _public_with(platform, "actor"):
            if "tenant" not in d.privacy.subjects:
                continue
            touched[d.table] = _pseudonymise_public(platform, d, tenant.id, actor, [email], salt)
        app_db.execute_sql("DELETE FROM public.login_failure WHERE key = %s", (account_key(tenant.slug, email),))
    return touched


def forget_workspace_shared(platform, tenant, emails: list[str], salt: str) -> dict:
    """Outside any tenant transaction, before the schema is dropped: everything in public tables
    that names the workspace, by its ``tenant`` column and its declaration (the catalogue row
    itself goes with :meth:`~core.tenancy.TenantService.delete`). Returns ``{table: rows}``."""
    touched: dict[str, int] = {}
    public_columns = _columns("'public'")
    for d in _public_with(platform, "tenant"):
        if d.table == "tenant":
            continue
        column = d.privacy.subjects["tenant"]
        cols = public_columns.get(d.table, {})
        if d.privacy.erase == "delete":
            cur = app_db.execute_sql(f"DELETE FROM public.{quote_ident(d.table)} WHERE {quote_ident(column)} = %s",
                                     (tenant.id,))
            touched[d.table] = cur.rowcount
        elif d.privacy.erase == "pseudonymise":
            touched[d.table] = _pseudonymise_public(platform, d, tenant.id, None, emails, salt)
        elif d.privacy.erase == "redact":
            sets = [f"{quote_ident(c)} = {_blank(c, cols[c])}" for c in (*d.privacy.personal, *d.privacy.content)
                    if c in cols]
            if sets:
                cur = app_db.execute_sql(f"UPDATE public.{quote_ident(d.table)} SET {', '.join(sets)} "
                                         f"WHERE {quote_ident(column)} = %s", (tenant.id,))
                touched[d.table] = cur.rowcount
    # Login throttles are keyed by hashes of the workspace and an address: the members' go.
    cur = app_db.execute_sql("DELETE FROM public.login_failure WHERE key = ANY(%s)",
                             ([account_key(tenant.slug, e) for e in emails],))
    touched["login_failure"] = cur.rowcount
    return touched


def _public_with(platform, subject: str):
    return [d for d in platform.registry.models()
            if d.scope == "public" and subject in d.privacy.subjects and d.privacy.erase not in ("keep", "none")]


def _pseudonymise_public(platform, d, tenant_id: int, actor: str | None, emails: list[str], salt: str) -> int:
    """Pseudonymise a public table's rows of one workspace (``actor``: only what names that actor).
    A table the serving role may not update goes through its owner's SECURITY DEFINER function."""
    table = f"public.{d.table}"
    updatable = app_db.execute_sql("SELECT has_table_privilege(%s, 'UPDATE')", (table,)).fetchone()[0]
    if not updatable:
        fn = f"public.{platform.settings.role_prefix}_pseudonymise_{d.table}"
        if app_db.execute_sql("SELECT to_regprocedure(%s)", (f"{fn}(bigint,text,text[],text[],text)",)).fetchone()[0] is None:
            raise RuntimeError(f"{table} is declared erase='pseudonymise' but the serving role may not update it "
                               f"and there is no {fn}(tenant_id, actor, addresses, pseudonyms, salt) to do it")
        return app_db.execute_sql(f"SELECT {fn}(%s, %s, %s, %s, %s)",
                                  (tenant_id, actor, emails, [pseudonym(salt, e) for e in emails], salt)).fetchone()[0]
    tenant_column = d.privacy.subjects["tenant"]
    cols = _columns("'public'").get(d.table, {})
    sets = [f"{quote_ident(c)} = {_scrub(c, cols[c])}" for c in d.privacy.personal if c in cols]
    if not sets:
        return 0
    where, params = f"{quote_ident(tenant_column)} = %s", (tenant_id,)
    if actor is not None and "actor" in d.privacy.subjects:
        where += f" AND {quote_ident(d.privacy.subjects['actor'])} = %s"
        params += (actor,)
    return app_db.execute_sql(f"UPDATE {table} SET {', '.join(sets)} WHERE {where}", params).rowcount


def new_salt() -> str:
    return secrets.token_hex(16)
