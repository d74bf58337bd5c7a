"""Devices addon: the phones that send and receive SMS for a tenant."""
