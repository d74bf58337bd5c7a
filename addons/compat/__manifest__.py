{
    "name": "compat",
    "version": "1.0.0",
    "summary": "The SMS Gateway for Android third-party API (/3rdparty/v1): existing clients work by changing the base URL",
    "depends": ["messaging", "devices", "webhooks"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
