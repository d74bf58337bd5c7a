{
    "name": "messaging",
    "version": "1.0.0",
    "summary": "Send, route, track and receive SMS through the tenant's phones",
    "depends": ["devices"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
