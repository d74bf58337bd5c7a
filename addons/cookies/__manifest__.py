{
    "name": "cookies",
    "version": "1.0.0",
    "summary": "Cookie consent banner with a recorded proof of each choice, and first-party analytics "
               "of the public pages that counts only visitors who accepted it",
    "depends": ["privacy"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
