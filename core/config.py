"""Settings read from the environment, with defaults that let one command run everything."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message says which and why."""


def _int(env, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env, name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _choice(env, name: str, default: str, choices: tuple) -> str:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    """Everything configurable about one platform process.

    Built from the environment by :meth:`from_env`; tests build their own.
    """

    database_url: str | None = None
    app_database_url: str | None = None
    redis_url: str | None = None
    base_domain: str = "localhost"
    data_dir: Path = field(default_factory=lambda: Path("var").resolve())
    port: int = 8888
    # The address `smsgw serve` listens on: loopback unless the operator says otherwise (behind a
    # proxy on the same machine that is all it needs; "0.0.0.0" or "::" for every interface).
    bind: str = "127.0.0.1"
    # "https" (SMSGW_HTTPS=1): people reach the platform over HTTPS only, so every answer is
    # treated as HTTPS (Secure cookies, HSTS) whatever a proxy's X-Forwarded-Proto says or omits.
    public_scheme: str = "http"
    theme: str = "default"
    themes_dir: Path = PROJECT_ROOT / "themes"
    locale_dir: Path = PROJECT_ROOT / "locale"
    role_prefix: str = "smsgw"
    db_pool_size: int = 16
    max_body_size: int = 2 * 1024 * 1024
    migrate_jobs: int = 4
    tenant_cache_ttl: float = 60.0
    default_language: str = "en"
    # The pseudo-locales qps-ploc and qps-plocm (core/i18n.py), chosen by ?lang= or cookie only: they show
    # every translated string changed, so untranslated text stands out (translators' previews, tests).
    pseudo_locales: bool = False
    embedded_pg_fast: bool = False
    trust_proxy_headers: bool = False
    debug: bool = False
    # Webhook deliveries: a deadline for each whole attempt, a pool of their own, a cap per tenant.
    webhook_timeout: int = 30
    webhook_workers: int = 8
    webhook_tenant_concurrency: int = 2
    # A delivery's claim lease: renewed while its attempt runs, so only a dead worker's claim
    # expires and is offered again. 0 here means "the attempt's deadline plus 30 s".
    webhook_lease: int = 0
    # Self-service sign-up: "open", "approval" (an Admin approves each new workspace) or "closed".
    signup: str = "open"
    signup_per_ip_hour: int = 3  # workspaces one client address may create per hour
    find_workspace_per_ip_hour: int = 10  # "find my workspace" requests per client address and hour
    signup_per_hour: int = 50  # workspaces the whole platform accepts per hour
    unverified_ttl_days: int = 7  # a sign-up whose owner never confirms the address is removed after this
    # A workspace its Customer deleted waits this many days (at most 30) before it is erased, and
    # can be restored meanwhile.
    deletion_grace_days: int = 14
    # Due work (core/due.py): the slow repair pass visits every workspace once per this many
    # seconds, spread evenly; a pooled connection that entered more schemas than this is closed
    # when it returns to the pool (each schema leaves catalogue cache in its backend).
    due_repair_seconds: int = 3600
    # Usage metering: a web process writes the API calls and latencies it counted this often (a
    # process killed without warning loses at most this window of API-call counts).
    usage_flush_seconds: int = 10
    # Devices: a phone with no contact (a poll, its end, a report, a heartbeat) for this many
    # seconds is offline; its long polls wait at most half of it, so a phone that polls is never
    # taken for offline.
    device_offline_seconds: int = 120
    # Billing quotas (addons/billing/quotas.py): the plan code of a workspace without a subscription
    # ("" = no limits for such workspaces, e.g. an operator who does not sell); the remaining
    # allowance (segments) below which a hard-stop workspace's sends take the exact, serialized path;
    # how often a process re-reads a workspace's exact usage on the submit path at most.
    billing_default_plan: str = "free"
    billing_exact_margin: int = 500
    billing_refresh_seconds: int = 5
    db_schemas_per_connection: int = 100
    # Where "contact us about privacy" requests are mailed (the privacy page's form, and the address
    # the published policy names); empty means privacy@<base domain>.
    privacy_email: str = ""
    # The platform's own brand (core/brand.py): the product's name on pages, in titles and mails, and
    # the support address pages name; a workspace's brand (the branding addon) may replace both.
    product_name: str = "SMS Gateway"
    support_email_setting: str = ""
    # Name servers the custom-domain check asks for TXT records ("host[:port]", comma-separated);
    # empty: the system's (/etc/resolv.conf).
    dns_nameservers: str = ""
    # Message-text retention (privacy addon): a backlog is removed in batches of at most this many
    # rows, each a transaction of its own that should hold its row locks no longer than this many ms
    # (a slower batch halves the next one's size), with this pause between two batches so the
    # removal leaves the database to the sends (bench/bench_retention.py).
    retention_batch: int = 1000
    retention_batch_ms: int = 50
    retention_pause_ms: int = 100
    # The cookie policy's version (cookies addon): a browser whose recorded choice names another
    # version is asked again, and analytics stays off until it answers.
    cookie_policy_version: str = "1"
    # Billing (issue 17): the seller on every invoice (the operator), its bank details for manual
    # payment, invoice numbering (one gapless series per issuer and kind), payment terms, dunning,
    # and the Stripe account (empty key: the Stripe provider is not offered).
    billing_seller_name: str = ""
    billing_seller_address: str = ""
    billing_seller_country: str = ""
    billing_seller_vat_id: str = ""
    billing_seller_email: str = ""
    billing_bank_details: str = ""
    billing_issuer: str = "default"
    billing_invoice_prefix: str = "INV-"
    billing_credit_note_prefix: str = "CN-"
    billing_payment_terms_days: int = 14
    billing_dunning_grace_days: int = 14
    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    # Operations (issue 21): Prometheus metrics on a listener of their own (HOST:PORT; empty: no
    # metrics and no counting), optionally behind a bearer token; log lines as text or JSON.
    metrics_address: str = ""
    metrics_token: str = ""
    log_format: str = "text"
    # Backups (core/backup.py): where the worker writes one every night at this hour (UTC; empty
    # dir: no scheduled backups), and how many daily/weekly/monthly ones retention keeps.
    backup_dir: str = ""
    backup_hour: int = 3
    backup_keep_daily: int = 7
    backup_keep_weekly: int = 4
    backup_keep_monthly: int = 6
    # Workspaces on several PostgreSQL servers (core/placement.py): alias -> administrative URL of
    # each server besides the default one (SMSGW_DATABASES="eu1=postgresql://... eu2=..."), how new
    # workspaces are placed (least-loaded, or region), and each server's regions (default included).
    databases: tuple = ()
    placement: str = "least-loaded"
    database_regions: tuple = ()

    @classmethod
    def from_env(cls, env=None, **overrides) -> "Settings":
        env = os.environ if env is None else env
        base_domain = env.get("SMSGW_BASE_DOMAIN", "localhost").strip().lower().rstrip(".")
        if not base_domain or "/" in base_domain or ":" in base_domain:
            raise ConfigError(
                f"SMSGW_BASE_DOMAIN must be a host name such as example.com, got {base_domain!r}"
            )
        role_prefix = env.get("SMSGW_DB_ROLE_PREFIX", "smsgw")
        if not role_prefix.isidentifier() or role_prefix.lower() != role_prefix or len(role_prefix) > 16:
            raise ConfigError("SMSGW_DB_ROLE_PREFIX must be lowercase letters, digits or _ (max 16)")
        values = dict(
            database_url=env.get("DATABASE_URL") or None,
            app_database_url=env.get("SMSGW_APP_DATABASE_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            base_domain=base_domain,
            data_dir=Path(env.get("SMSGW_DATA_DIR", "var")).resolve(),
            port=_int(env, "SMSGW_PORT", 8888, 1),
            bind=env.get("SMSGW_BIND", "").strip() or "127.0.0.1",
            public_scheme="https" if _bool(env, "SMSGW_HTTPS", False) else "http",
            theme=env.get("SMSGW_THEME", "default"),
            role_prefix=role_prefix,
            db_pool_size=_int(env, "SMSGW_DB_POOL_SIZE", 16, 1),
            max_body_size=_int(env, "SMSGW_MAX_BODY_SIZE", 2 * 1024 * 1024, 1024),
            migrate_jobs=_int(env, "SMSGW_MIGRATE_JOBS", 4, 1),
            default_language=env.get("SMSGW_DEFAULT_LANGUAGE", "en"),
            pseudo_locales=_bool(env, "SMSGW_PSEUDO_LOCALES", False),
            embedded_pg_fast=_bool(env, "SMSGW_EMBEDDED_PG_FAST", False),
            trust_proxy_headers=_bool(env, "SMSGW_TRUST_PROXY", False),
            debug=_bool(env, "SMSGW_DEBUG", False),
            webhook_timeout=_int(env, "SMSGW_WEBHOOK_TIMEOUT", 30, 1),
            webhook_workers=_int(env, "SMSGW_WEBHOOK_WORKERS", 8, 2),
            webhook_tenant_concurrency=_int(env, "SMSGW_WEBHOOK_TENANT_CONCURRENCY", 2, 1),
            webhook_lease=_int(env, "SMSGW_WEBHOOK_LEASE", 0, 2),
            signup=_choice(env, "SMSGW_SIGNUP", "open", ("open", "approval", "closed")),
            signup_per_ip_hour=_int(env, "SMSGW_SIGNUP_PER_IP_HOUR", 3, 0),
            find_workspace_per_ip_hour=_int(env, "SMSGW_FIND_WORKSPACE_PER_IP_HOUR", 10, 0),
            signup_per_hour=_int(env, "SMSGW_SIGNUP_PER_HOUR", 50, 0),
            unverified_ttl_days=_int(env, "SMSGW_UNVERIFIED_TTL_DAYS", 7, 1),
            deletion_grace_days=_int(env, "SMSGW_DELETION_GRACE_DAYS", 14, 0),
            due_repair_seconds=_int(env, "SMSGW_DUE_REPAIR_SECONDS", 3600, 60),
            usage_flush_seconds=_int(env, "SMSGW_USAGE_FLUSH_SECONDS", 10, 1),
            device_offline_seconds=_int(env, "SMSGW_DEVICE_OFFLINE_SECONDS", 120, 4),
            billing_default_plan=env.get("SMSGW_BILLING_DEFAULT_PLAN", "free").strip(),
            billing_exact_margin=_int(env, "SMSGW_BILLING_EXACT_MARGIN", 500, 0),
            billing_refresh_seconds=_int(env, "SMSGW_BILLING_REFRESH_SECONDS", 5, 1),
            db_schemas_per_connection=_int(env, "SMSGW_DB_SCHEMAS_PER_CONNECTION", 100, 1),
            privacy_email=(env.get("SMSGW_PRIVACY_EMAIL") or "").strip(),
            product_name=(env.get("SMSGW_PRODUCT_NAME") or "SMS Gateway").strip()[:60],
            support_email_setting=(env.get("SMSGW_SUPPORT_EMAIL") or "").strip(),
            dns_nameservers=(env.get("SMSGW_DNS_NAMESERVERS") or "").strip(),
            retention_batch=_int(env, "SMSGW_RETENTION_BATCH", 1000, 1),
            retention_batch_ms=_int(env, "SMSGW_RETENTION_BATCH_MS", 50, 1),
            retention_pause_ms=_int(env, "SMSGW_RETENTION_PAUSE_MS", 100, 0),
            cookie_policy_version=(env.get("SMSGW_COOKIE_POLICY_VERSION") or "1").strip(),
            billing_seller_name=(env.get("SMSGW_BILLING_SELLER_NAME") or "").strip(),
            # Lines separated by newlines, or by "\\n" where the environment cannot hold a newline.
            billing_seller_address=(env.get("SMSGW_BILLING_SELLER_ADDRESS") or "").replace("\\n", "\n").strip(),
            billing_seller_country=(env.get("SMSGW_BILLING_SELLER_COUNTRY") or "").strip().upper(),
            billing_seller_vat_id=(env.get("SMSGW_BILLING_SELLER_VAT_ID") or "").strip(),
            billing_seller_email=(env.get("SMSGW_BILLING_SELLER_EMAIL") or "").strip(),
            billing_bank_details=(env.get("SMSGW_BILLING_BANK_DETAILS") or "").replace("\\n", "\n").strip(),
            billing_issuer=(env.get("SMSGW_BILLING_ISSUER") or "default").strip(),
            billing_invoice_prefix=(env.get("SMSGW_BILLING_INVOICE_PREFIX") or "INV-").strip(),
            billing_credit_note_prefix=(env.get("SMSGW_BILLING_CREDIT_NOTE_PREFIX") or "CN-").strip(),
            billing_payment_terms_days=_int(env, "SMSGW_BILLING_PAYMENT_TERMS_DAYS", 14, 0),
            billing_dunning_grace_days=_int(env, "SMSGW_BILLING_DUNNING_GRACE_DAYS", 14, 8),
            stripe_secret_key=(env.get("SMSGW_STRIPE_SECRET_KEY") or "").strip(),
            stripe_webhook_secret=(env.get("SMSGW_STRIPE_WEBHOOK_SECRET") or "").strip(),
            stripe_api_base=(env.get("SMSGW_STRIPE_API_BASE") or "").strip().rstrip("/"),
            metrics_address=(env.get("SMSGW_METRICS_ADDRESS") or "").strip(),
            metrics_token=(env.get("SMSGW_METRICS_TOKEN") or "").strip(),
            log_format=_choice(env, "SMSGW_LOG_FORMAT", "text", ("text", "json")),
            backup_dir=(env.get("SMSGW_BACKUP_DIR") or "").strip(),
            backup_hour=_int(env, "SMSGW_BACKUP_HOUR", 3, 0),
            backup_keep_daily=_int(env, "SMSGW_BACKUP_KEEP_DAILY", 7, 0),
            backup_keep_weekly=_int(env, "SMSGW_BACKUP_KEEP_WEEKLY", 4, 0),
            backup_keep_monthly=_int(env, "SMSGW_BACKUP_KEEP_MONTHLY", 6, 0),
        )
        values.update(overrides)
        if values["webhook_timeout"] > 30:
            raise ConfigError("SMSGW_WEBHOOK_TIMEOUT is the most seconds one webhook attempt may take; "
                              f"at most 30, got {values['webhook_timeout']}")
        if values["deletion_grace_days"] > 30:
            raise ConfigError("SMSGW_DELETION_GRACE_DAYS is how long a deleted workspace can still be restored; "
                              f"at most 30 days (the privacy policy's promise), got {values['deletion_grace_days']}")
        if not values["webhook_lease"]:
            # Outlives the whole attempt even if a renewal is missed (a slow database).
            values["webhook_lease"] = values["webhook_timeout"] + 30
        if values["webhook_tenant_concurrency"] >= values["webhook_workers"]:
            raise ConfigError("SMSGW_WEBHOOK_TENANT_CONCURRENCY must be below SMSGW_WEBHOOK_WORKERS, or one "
                              "workspace's slow endpoints could take every delivery thread")
        for setting, address in (("SMSGW_PRIVACY_EMAIL", values["privacy_email"]),
                                 ("SMSGW_SUPPORT_EMAIL", values["support_email_setting"])):
            _check_address(setting, address)
        if not re.fullmatch(r"[0-9A-Za-z._-]{1,40}", values["cookie_policy_version"]):
            raise ConfigError("SMSGW_COOKIE_POLICY_VERSION must be 1 to 40 letters, digits, '.', '_' or '-' "
                              f"(e.g. 2026-12-07), got {values['cookie_policy_version'][:60]!r}")
        if values["billing_seller_country"] and not re.fullmatch(r"[A-Z]{2}", values["billing_seller_country"]):
            raise ConfigError("SMSGW_BILLING_SELLER_COUNTRY is the seller's country as two letters (ISO 3166-1, "
                              f"e.g. DE), got {values['billing_seller_country'][:20]!r}")
        for name, prefix in (("SMSGW_BILLING_INVOICE_PREFIX", values["billing_invoice_prefix"]),
                             ("SMSGW_BILLING_CREDIT_NOTE_PREFIX", values["billing_credit_note_prefix"])):
            if not re.fullmatch(r"[0-9A-Za-z/_-]{0,12}", prefix):
                raise ConfigError(f"{name} must be at most 12 letters, digits, '/', '_' or '-', got {prefix[:20]!r}")
        if values["billing_invoice_prefix"] == values["billing_credit_note_prefix"]:
            raise ConfigError("SMSGW_BILLING_INVOICE_PREFIX and SMSGW_BILLING_CREDIT_NOTE_PREFIX must differ: "
                              "invoices and credit notes are two series whose numbers must not look alike")
        from .placement import parse_databases, parse_regions

        values["databases"] = parse_databases(env.get("SMSGW_DATABASES", ""))
        values["placement"] = _choice(env, "SMSGW_PLACEMENT", "least-loaded", ("least-loaded", "region"))
        values["database_regions"] = parse_regions(env.get("SMSGW_DATABASE_REGIONS", ""),
                                                   {"default"} | {alias for alias, _ in values["databases"]})
        if values["backup_hour"] > 23:
            raise ConfigError(f"SMSGW_BACKUP_HOUR is an hour of the day (UTC), 0 to 23, got {values['backup_hour']}")
        if values["metrics_address"]:
            from .metrics import parse_address

            parse_address(values["metrics_address"])  # a ConfigError now, not when the server starts
        return cls(**values)

    @property
    def support_email(self) -> str:
        """The platform's support address: ``SMSGW_SUPPORT_EMAIL``, else support@<base domain>."""
        return self.support_email_setting or f"support@{self.base_domain}"

    @property
    def privacy_address(self) -> str:
        """Where privacy requests are mailed: ``SMSGW_PRIVACY_EMAIL``, else privacy@<base domain>."""
        return self.privacy_email or f"privacy@{self.base_domain}"

    @property
    def https(self) -> bool:
        return self.public_scheme == "https"

    def public_url(self, slug: str | None = None) -> str:
        """The URL people use to reach the platform (``slug=None``) or a tenant."""
        host = self.base_domain if slug is None else f"{slug}.{self.base_domain}"
        default_port = 443 if self.public_scheme == "https" else 80
        port = "" if self.port == default_port else f":{self.port}"
        return f"{self.public_scheme}://{host}{port}"


def _check_address(setting: str, address: str) -> None:
    """A ``ConfigError`` unless ``address`` is empty or one plain e-mail address."""
    if address and (address.count("@") != 1 or address.startswith("@") or address.endswith("@")
                    or any(c.isspace() or c in "<>,;\"" for c in address)):
        raise ConfigError(f"{setting} must be one plain e-mail address such as "
                          f"someone@example.com, got {address!r}")
