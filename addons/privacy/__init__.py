"""Privacy addon: the promises of the privacy policy, as features (retention, export, erasure,
rectification, restriction and objection, privacy requests, the published policy)."""
