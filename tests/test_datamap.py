"""Personal data, declared (core/datamap.py): every table the kernel and the addons create is declared, each
declaration names real columns, and the loader refuses a model that does not say what it holds."""

from __future__ import annotations

import pytest

from core.addons import AddonError, AddonRegistry
from core.datamap import NO_PERSONAL_DATA, WHOLE_TABLE, DeclarationError, PersonalData, Table, declare
from core.db import app_db, connection
from tests.support.addons import addon_folder, make_addon

def columns_in(schema: str) -> dict[str, set[str]]:
    """``{table: {column}}`` of a schema, from pg_catalog (the app role sees it without privileges)."""
    rows = app_db.execute_sql(
        "SELECT c.relname, a.attname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "JOIN pg_attribute a ON a.attrelid = c.oid WHERE n.nspname = %s AND c.relkind IN ('r', 'p') "
        "AND a.attnum > 0 AND NOT a.attisdropped", (schema,)).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def test_the_kernel_and_every_shipped_addon_declare_their_tables(platform):
    declared = {(d.addon, d.qualified) for d in platform.registry.models()}
    assert {("core", "users"), ("core", "public.tenant"), ("core", "api_tokens"), ("core", "refresh_tokens"),
            ("audit", "public.audit_event"), ("devices", "devices"), ("messaging", "recipients"),
            ("webhooks", "webhook_events"), ("compat", "compat_access_tokens")} <= declared
    by_table = {d.qualified: d.privacy for d in platform.registry.models()}
    assert by_table["messages"].content == ("text",) and by_table["messages"].redact_after == "created_at"
    assert by_table["recipients"].subjects == {"phone": "phone"}
    assert by_table["suppressions"].erase == "keep"
    assert by_table["public.audit_event"].erase == "pseudonymise"


def test_every_declared_table_and_column_exists_after_migration(platform, make_tenant):
    t = make_tenant("datamap")
    with connection():
        schemas = {"public": columns_in("public"), "tenant": columns_in(t.schema_name)}
    for d in platform.registry.models():
        table = schemas[d.scope].get(d.table)
        assert table is not None, f"{d.addon} declares {d.qualified}, which no migration creates"
        missing = d.privacy.columns() - table
        assert not missing, f"{d.addon}: {d.qualified} has no columns {sorted(missing)}"
        if d.model is not None:
            fields = {f.column_name for f in d.model._meta.sorted_fields}
            assert fields <= table, f"{d.model.__name__} maps columns {sorted(fields - table)} that do not exist"


def test_every_table_of_a_migrated_database_is_declared(platform, make_tenant):
    """What nobody declares, the privacy addon's export and erasure would miss."""
    t = make_tenant("datamap")
    declared = {(d.scope, d.table) for d in platform.registry.models()}
    with connection():
        # (Huey's task storage is not ours: it lives in a schema of its own, <prefix>_queue.)
        found = {("public", name) for name in columns_in("public")}
        found |= {("tenant", name) for name in columns_in(t.schema_name)}
    assert found - declared == set()


class Plain:
    """A stand-in for anything that is not a model."""


def model(**meta):
    from peewee import TextField

    from core.users import TenantModel

    attrs = {"phone": TextField(), "body": TextField(), "Meta": type("Meta", (), {"table_name": "things", **meta})}
    return type("Thing", (TenantModel,), attrs)


@pytest.mark.parametrize("privacy,message", [
    (PersonalData(personal=("phone",), erase="delete"), "names no subject column"),
    (PersonalData(personal=("phone",), subjects={"phone": "phone"}), "erase='none'"),
    (PersonalData(content=("body",), subjects={"phone": "phone"}, erase="redact"), "no redact_after"),
    (PersonalData(personal=("phone",), subjects={"phone": "phone"}, erase="keep"), "needs the reason"),
    (PersonalData(personal=("phone",), subjects={"friend": "phone"}, erase="delete"), "unknown subject kinds"),
    (PersonalData(personal=("phone",), subjects={"phone": "phone"}, erase="shred"), "erase must be one of"),
    (PersonalData(personal=("nope",), subjects={"phone": "phone"}, erase="delete"), "columns the model does not have"),
    (PersonalData(personal=("phone",), subjects={"tenant": "phone"}, erase="delete"), "its tenant subject is"),
    (PersonalData(export=("phone",)), "holds no personal data"),
])
def test_a_wrong_declaration_is_refused_with_its_reason(privacy, message):
    with pytest.raises(DeclarationError, match=message) as info:
        declare("acme", model(privacy=privacy))
    assert "addon 'acme', table things" in str(info.value)


def test_what_is_not_a_declaration_is_refused():
    with pytest.raises(DeclarationError, match="has no Meta.privacy"):
        declare("acme", model())
    with pytest.raises(DeclarationError, match="neither a peewee model"):
        declare("acme", Plain)
    with pytest.raises(DeclarationError, match="not a core.datamap.PersonalData"):
        declare("acme", model(privacy={"personal": ["phone"]}))
    ok = declare("acme", model(privacy=PersonalData(personal=("phone",), content=("body",),
                                                    subjects={"tenant": WHOLE_TABLE}, redact_after="phone",
                                                    export=("phone", "body"), erase="delete")))
    assert (ok.addon, ok.qualified, ok.scope) == ("acme", "things", "tenant")
    raw = declare("acme", Table("acme_log", "public", NO_PERSONAL_DATA))
    assert (raw.qualified, raw.model) == ("public.acme_log", None)


def test_the_loader_refuses_an_addon_whose_model_says_nothing_about_personal_data(tmp_path):
    hooks = '''
        from peewee import TextField

        from core.addons import hookimpl
        from core.users import TenantModel


        class Contact(TenantModel):
            phone = TextField()

            class Meta:
                table_name = "undeclared_contacts"


        @hookimpl
        def smsgw_models():
            return [Contact]
    '''
    with addon_folder(tmp_path):
        with pytest.raises(AddonError, match="addon 'undeclared': model Contact has no Meta.privacy"):
            AddonRegistry(addons=[make_addon(tmp_path, "undeclared", hooks)])


def test_two_addons_cannot_declare_the_same_table(tmp_path):
    hooks = '''
        from core.addons import hookimpl
        from core.datamap import NO_PERSONAL_DATA, Table


        @hookimpl
        def smsgw_models():
            return [Table("shared_things", "tenant", NO_PERSONAL_DATA)]
    '''
    with addon_folder(tmp_path):
        manifests = [make_addon(tmp_path, "one", hooks), make_addon(tmp_path, "two", hooks)]
        with pytest.raises(AddonError, match="shared_things is declared by both 'one' and 'two'"):
            AddonRegistry(addons=manifests)
