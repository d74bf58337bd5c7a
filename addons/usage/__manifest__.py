{
    "name": "usage",
    "version": "1.0.0",
    "summary": "Usage metering per workspace (messages, segments, inbound, webhooks, API calls, sign-ins) "
               "as daily aggregates, the Usage page and API, and the operator's view across workspaces",
    "depends": ["messaging", "devices", "webhooks"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
