-- Contacts (issue 22, item 8): a name for a number (E.164, one contact per number), free tags,
-- and groups to send to; message templates with {name}-style fields, also offered as saved
-- replies in conversations.
CREATE TABLE contacts (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    phone text NOT NULL UNIQUE CHECK (phone ~ '^\+[0-9]{4,15}$'),
    tags text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contacts_name ON contacts (lower(name));
CREATE INDEX contacts_tags ON contacts USING gin (tags);

CREATE TABLE contact_groups (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX contact_groups_name ON contact_groups (lower(name));

CREATE TABLE contact_group_members (
    group_id bigint NOT NULL REFERENCES contact_groups (id) ON DELETE CASCADE,
    contact_id bigint NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, contact_id)
);
CREATE INDEX contact_group_members_contact ON contact_group_members (contact_id);

CREATE TABLE message_templates (
    id bigserial PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    body text NOT NULL CHECK (length(body) BETWEEN 1 AND 2000),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX message_templates_name ON message_templates (lower(name));
