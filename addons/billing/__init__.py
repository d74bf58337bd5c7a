"""Billing: operator-defined plans (versioned), a subscription per workspace, metering from the usage
addon's exact daily aggregates, quotas answered at submit, invoices numbered without gaps, and
payments through provider plugins (manual bank transfer and Stripe ship)."""
