{
    "name": "devices",
    "version": "1.0.0",
    "summary": "Android phones: pairing, the long-poll device protocol, fleet health",
    "depends": [],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
