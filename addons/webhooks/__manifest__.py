{
    "name": "webhooks",
    "version": "1.0.0",
    "summary": "Signed webhooks (Standard Webhooks) for message and device events, with retries and a delivery log",
    "depends": ["messaging", "devices"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
