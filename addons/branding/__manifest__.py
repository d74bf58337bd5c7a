{
    "name": "branding",
    "version": "1.0.0",
    "summary": "White label per workspace: product name, logo, colours, mail sender, support address, "
               "theme, and custom domains proved by a DNS TXT record",
    "depends": [],
    "license": "Proprietary",
    "author": "Platform team",
    "default_enabled": True,
}
