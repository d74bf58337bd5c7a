from setuptools import find_packages, setup

setup(
    name="smsgw",
    version="0.1.0",
    description="Multi-tenant SMS gateway through your own Android phones",
    python_requires=">=3.11",
    # The phone's companion is a distribution of its own (android_companion/pyproject.toml).
    packages=find_packages(include=["core", "core.*", "addons", "addons.*"]),
    include_package_data=True,
    package_data={"": ["*.sql", "*.html", "*.css", "*.js", "*.po", "*.svg", "*.txt"]},
    install_requires=[
        # Bounded to the major release tested: core relies on private attributes of these four,
        # each checked by tests/test_private_api_canary.py.
        "tornado>=6.4,<7",
        "peewee>=4.5,<5",
        "psycopg2-binary>=2.9,<3",
        "jinja2>=3.1",
        "pluggy>=1.5",
        "itsdangerous>=2.1",
        "pyjwt[crypto]>=2.8",
        "bcrypt>=4.1",
        "huey>=3.5,<4",
        # MultiFernet encryption of secrets at rest and RSA keys for JWT.
        "cryptography>=42",
        # Compiles translators' .po catalogues in memory; negotiates locales.
        "babel>=2.14",
        # QR codes (SVG) for phone pairing, pure Python.
        "segno>=1.6",
        # Google's libphonenumber port: E.164 normalisation and validation per region.
        "phonenumbers>=8.13",
        "google-re2>=1.1",  # the abuse addon's acceptable-use patterns: linear-time matching
        # Request bodies checked against the published OpenAPI schemas, compiled to Python code
        # once (core/bodyschema.py): a few microseconds per body where hand-written checks drifted.
        "fastjsonschema>=2.19,<3",
        # Encodes API answers 5-8x faster than the json module (a 1,000-recipient answer: 0.1 ms).
        "orjson>=3.10",
        # Custom domains (branding addon): the TXT record that proves a host is the workspace's. The
        # standard library resolves only addresses; a TXT lookup needs a DNS client (random ids and
        # ports, TCP on truncation, resolv.conf): dnspython, pure Python, no dependencies.
        "dnspython>=2.6,<3",
        # The server's event loop: asyncio's loop in C on libuv (single sends 10-20 % faster).
        "uvloop>=0.19",
        # Invoice PDFs (billing addon): pure Python, maintained, embeds TrueType fonts (so invoices
        # print any Latin, Greek or Cyrillic name), no system library to install.
        "fpdf2>=2.7,<3",
        # Stripe payments (billing addon): Checkout, the customer portal and webhook signature checks
        # by the library itself (stripe.Webhook.construct_event).
        "stripe>=8",
        # /metrics in the Prometheus text format, across processes (core/metrics.py).
        "prometheus_client>=0.20",
    ],
    extras_require={
        # Embedded PostgreSQL 16 binaries in a wheel, used when DATABASE_URL is unset: `make run` needs
        # no system database. An extra, so hosts with DATABASE_URL do not download PostgreSQL.
        "embedded": ["pgserver>=0.1.4"],
        "redis": ["redis>=5"],
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            # Runs the suite in one process per core (make test): it outgrew 20 minutes in one.
            "pytest-xdist>=3.5",
            "setuptools>=68",
            "wheel",
            # Drives Debian's chromium for browser tests (no browser download).
            "playwright>=1.45",
            "requests>=2.31",
            # The SMS Gateway for Android client (requests flavour): the compat API's contract in tests.
            "android-sms-gateway[requests]>=4.3",
            # Verifies our webhook signatures in tests and examples (a library we did not write).
            "standardwebhooks>=1.0",
            # The published API contract: validates /api/openapi.json as OpenAPI 3.1 ...
            "openapi-spec-validator>=0.7",
            # ... and fuzzes the live API against it (property-based, on hypothesis).
            "schemathesis>=4.0,<5",
            # Property tests of money arithmetic (billing's proration), used directly by the tests.
            "hypothesis>=6",
            # The fault tests run the platform with Redis wake-ups (what the redis extra installs).
            "redis>=5",
            # Property tests of the billing addon's money arithmetic (rounding, tax, totals).
            "hypothesis>=6.100",
        ],
    },
    entry_points={
        "console_scripts": ["smsgw=core.cli:main"],
        # Shipped addons are found exactly like resellers' packages.
        "smsgw.addons": [
            "abuse = addons.abuse",
            "audit = addons.audit",
            "billing = addons.billing",
            "branding = addons.branding",
            "compat = addons.compat",
            "contacts = addons.contacts",
            "cookies = addons.cookies",
            "devices = addons.devices",
            "messaging = addons.messaging",
            "mobile = addons.mobile",
            "privacy = addons.privacy",
            "resellers = addons.resellers",
            "usage = addons.usage",
            "webhooks = addons.webhooks",
        ],
    },
)
