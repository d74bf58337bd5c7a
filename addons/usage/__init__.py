"""Usage metering: daily aggregates per workspace (the records billing charges from), the *Usage*
page and API, and the platform admin's view across workspaces."""
