{
    "name": "audit",
    "version": "1.0.0",
    "summary": "Append-only audit trail of security events and admin access, kept 90 days",
    "depends": [],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
