{
    "name": "resellers",
    "version": "1.0.0",
    "summary": "Reseller (partner) accounts: their console, their customers' workspaces, support access "
               "with a written reason, and the addons the operator makes available to them",
    "depends": ["billing", "branding"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": False,
}
