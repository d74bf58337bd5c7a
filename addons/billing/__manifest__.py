{
    "name": "billing",
    "version": "1.0.0",
    "summary": "Plans, subscriptions, exact metering and quotas, invoices, payments (manual and Stripe) "
               "and the Billing and Pricing pages",
    "depends": ["messaging", "devices", "usage"],
    "license": "Proprietary",
    "author": "SMS Gateway team",
    "default_enabled": True,
}
