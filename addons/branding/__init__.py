"""Branding addon: a workspace's white label (product name, logo, colours, mail sender, support
address, theme) and its own host names proved by DNS; the hooks a reseller addon implements to
give its workspaces a brand (:mod:`.hookspecs`)."""
