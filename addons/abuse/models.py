"""What the abuse addon's tables hold (declared for the privacy addon's export and erasure; the code
uses SQL, so these are :class:`core.datamap.Table` declarations, not models)."""

from core.datamap import NO_PERSONAL_DATA, WHOLE_TABLE, PersonalData, Table

MODELS = [
    # Alerts: their evidence names numbers and client addresses; they go with the workspace.
    Table("abuse_alerts", "tenant", PersonalData(personal=("summary", "evidence"), subjects={"tenant": WHOLE_TABLE},
                                                 erase="delete")),
    Table("abuse_countries", "tenant", NO_PERSONAL_DATA),
    Table("abuse_hourly", "tenant", NO_PERSONAL_DATA),
    Table("abuse_sandbox_numbers", "tenant", PersonalData(personal=("phone",), subjects={"phone": "phone"},
                                                          export=("phone", "created_at"), erase="delete")),
    Table("abuse_known_devices", "tenant", PersonalData(personal=("device",), subjects={"user": "user_id"},
                                                        export=("first_at",), erase="delete")),
    # Verification codes (digests only) for numbers; they go with the number.
    Table("abuse_sandbox_codes", "tenant", PersonalData(personal=("phone",), subjects={"phone": "phone"},
                                                        export=("phone", "sent_at", "expires_at"), erase="delete")),
    # Per API token: minutes of use per hour of the day, and the client addresses it was used from lately.
    Table("abuse_token_hours", "tenant", NO_PERSONAL_DATA),
    Table("abuse_token_ips", "tenant", PersonalData(personal=("ip",), subjects={"tenant": WHOLE_TABLE},
                                                    erase="delete")),
    Table("abuse_rules", "public", NO_PERSONAL_DATA),
    Table("abuse_rule_overrides", "public", NO_PERSONAL_DATA),
    Table("abuse_aup_patterns", "public", NO_PERSONAL_DATA),
    Table("abuse_queue", "public", PersonalData(personal=("summary", "evidence"), subjects={"tenant": "tenant_id"},
                                                erase="delete")),
]
