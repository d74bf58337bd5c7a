-- Reseller plans and invoicing. A retail plan is the reseller's price for its customers, on top of
-- the platform's wholesale plans (billing): its customers' invoices are the reseller's (billing's
-- invoices with the reseller as issuer and series), and each month the platform invoices the
-- reseller for the wholesale usage of all its workspaces (the tables below, with their own gapless
-- series). Money in integer minor units.
CREATE TABLE public.reseller_plan (
    id bigserial PRIMARY KEY,
    reseller_id bigint NOT NULL REFERENCES public.reseller (id) ON DELETE CASCADE,
    code text NOT NULL CHECK (code ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    currency char(3) NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    monthly_price bigint NOT NULL CHECK (monthly_price BETWEEN 0 AND 100000000000),
    included_segments bigint NOT NULL CHECK (included_segments >= 0),
    overage_per_1000 bigint NOT NULL CHECK (overage_per_1000 BETWEEN 0 AND 100000000000),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reseller_id, code)
);

ALTER TABLE public.reseller_tenant ADD COLUMN retail_plan_id bigint REFERENCES public.reseller_plan (id);

-- The platform's monthly invoice to a reseller, one per reseller and month, numbered without gaps
-- (the counter row is locked by the issuing transaction, as billing's are).
CREATE TABLE public.reseller_wholesale_counter (
    id integer PRIMARY KEY CHECK (id = 1),
    last_number bigint NOT NULL DEFAULT 0
);
INSERT INTO public.reseller_wholesale_counter (id) VALUES (1);

CREATE TABLE public.reseller_wholesale_invoice (
    id bigserial PRIMARY KEY,
    reseller_id bigint NOT NULL REFERENCES public.reseller (id),
    month date NOT NULL CHECK (extract(day FROM month) = 1),
    seq bigint NOT NULL UNIQUE CHECK (seq > 0),
    number text NOT NULL UNIQUE,
    currency char(3) NOT NULL,
    total bigint NOT NULL CHECK (total >= 0),
    issued_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (reseller_id, month)
);

CREATE TABLE public.reseller_wholesale_line (
    invoice_id bigint NOT NULL REFERENCES public.reseller_wholesale_invoice (id),
    tenant_id bigint NOT NULL,          -- no foreign key: the invoice outlives a deleted workspace
    tenant_slug text NOT NULL,
    segments bigint NOT NULL CHECK (segments >= 0),
    amount bigint NOT NULL CHECK (amount >= 0),
    description text NOT NULL,
    PRIMARY KEY (invoice_id, tenant_id)
);

-- Which month's customer invoice of billing's a workspace already has from its reseller.
CREATE TABLE public.reseller_customer_invoice (
    tenant_id bigint NOT NULL,
    month date NOT NULL,
    invoice_id bigint NOT NULL,
    PRIMARY KEY (tenant_id, month)
);

REVOKE ALL ON public.reseller_plan, public.reseller_wholesale_counter, public.reseller_wholesale_invoice,
    public.reseller_wholesale_line, public.reseller_customer_invoice FROM {{app_role}};
GRANT SELECT, INSERT ON public.reseller_plan, public.reseller_wholesale_invoice, public.reseller_wholesale_line,
    public.reseller_customer_invoice TO {{app_role}};
GRANT SELECT, UPDATE ON public.reseller_wholesale_counter TO {{app_role}};
GRANT UPDATE (retail_plan_id) ON public.reseller_tenant TO {{app_role}};
GRANT USAGE ON SEQUENCE public.reseller_plan_id_seq, public.reseller_wholesale_invoice_id_seq TO {{app_role}};
