{
    "name": "mobile",
    "version": "1.0.0",
    "summary": "Phones running the SMS Gateway for Android app join through its private-server API (/api/mobile/v1)",
    "depends": ["devices", "messaging"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
