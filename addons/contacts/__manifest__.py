{
    "name": "contacts",
    "version": "1.0.0",
    "summary": "Contacts with tags and groups (CSV import and export), message templates and saved replies",
    "depends": ["messaging"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
