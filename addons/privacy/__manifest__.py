{
    "name": "privacy",
    "version": "1.0.0",
    "summary": "Message-text retention, data export, erasure, rectification, restriction and objection, "
               "privacy requests with a 30-day clock, and the published privacy policy",
    "depends": [],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
