{
    "name": "abuse",
    "version": "1.0.0",
    "summary": "Abuse and fraud monitoring: accept-time signals, held messages, review queue",
    "depends": ["messaging", "devices"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
