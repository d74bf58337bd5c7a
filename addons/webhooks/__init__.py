"""Webhooks addon: tell the customer's systems what happened, signed the Standard Webhooks way."""
