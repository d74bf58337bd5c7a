"""Run the real migrator with one extra migration source (an addon-like directory).

Usage: python -m tests.support.migrate_with DIR [JOBS]
Configuration comes from the environment, as for ``smsgw migrate``.
"""

import sys
from pathlib import Path

from core.config import Settings
from core.migrations import collect
from core.platform import Platform


def main():
    extra_dir, jobs = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 2
    platform = Platform(Settings.from_env())
    extra = collect([("extra", extra_dir)])
    platform.tenant_migrations = platform.tenant_migrations + extra["tenant"]
    platform.start_database()
    applied, result = platform.migrate(jobs=jobs)
    print(f"migrated={len(result.migrated)} failed={len(result.failed)}")
    for slug, err in sorted(result.failed.items()):
        print(f"FAILED {slug}: {err}")
    platform.close()
    sys.exit(1 if result.failed else 0)


if __name__ == "__main__":
    main()
