"""The *SMS Gateway for Android* app's private-server ("mobile") API, per workspace."""
