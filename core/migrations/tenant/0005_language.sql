-- A person's own language for pages and mails (issue 24, item 5); '' means the workspace's default.
ALTER TABLE users ADD COLUMN language text NOT NULL DEFAULT '';
