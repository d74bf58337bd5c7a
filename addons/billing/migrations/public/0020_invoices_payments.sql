-- Invoices, payments and dunning (issue 17 items 5-6): the operator's records about each workspace,
-- in the public schema (a tenant role never sees them). Money is integer minor units.

-- The buyer: what a workspace's Customer enters on Billing -> Billing details. Invoices copy it
-- when they are issued (a later change never alters an issued invoice).
CREATE TABLE public.billing_accounts (
    tenant_id bigint PRIMARY KEY,
    company text NOT NULL DEFAULT '' CHECK (length(company) <= 200),
    address text NOT NULL DEFAULT '' CHECK (length(address) <= 1000),
    country text NOT NULL DEFAULT '' CHECK (country ~ '^([A-Z]{2})?$'),
    vat_id text NOT NULL DEFAULT '' CHECK (length(vat_id) <= 20),
    email text NOT NULL DEFAULT '' CHECK (length(email) <= 254),
    language text NOT NULL DEFAULT '' CHECK (length(language) <= 10),  -- the invoices' language
    provider text NOT NULL DEFAULT 'manual' CHECK (provider ~ '^[a-z][a-z0-9_-]{0,31}$'),
    provider_customer text NOT NULL DEFAULT '',  -- e.g. Stripe's cus_... once Checkout made one
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The operator's tax rate per buyer country, in hundredths of a percent (1900 = 19 %).
CREATE TABLE public.billing_tax_rates (
    country text PRIMARY KEY CHECK (country ~ '^[A-Z]{2}$'),
    rate_bp integer NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000),
    name text NOT NULL DEFAULT '' CHECK (length(name) <= 40),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Gapless numbering: one row per issuer and kind, locked (SELECT ... FOR UPDATE) by the transaction
-- that issues, which writes the invoice and the new last number together. A sequence would leave a
-- gap for every rolled-back transaction; this leaves none (issuers wait for each other instead).
CREATE TABLE public.billing_invoice_counters (
    issuer text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    last_number bigint NOT NULL DEFAULT 0 CHECK (last_number >= 0),
    PRIMARY KEY (issuer, kind)
);

CREATE TABLE public.billing_invoices (
    id bigserial PRIMARY KEY,
    tenant_id bigint NOT NULL,
    issuer text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    seq bigint NOT NULL CHECK (seq > 0),
    number text NOT NULL,
    corrects_invoice_id bigint REFERENCES public.billing_invoices (id),
    reason text NOT NULL CHECK (length(reason) BETWEEN 1 AND 200),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    period_start timestamptz,
    period_end timestamptz,
    issued_at timestamptz NOT NULL DEFAULT now(),
    due_at timestamptz NOT NULL,
    language text NOT NULL,
    seller jsonb NOT NULL,
    buyer jsonb NOT NULL,
    lines jsonb NOT NULL CHECK (jsonb_typeof(lines) = 'array' AND jsonb_array_length(lines) > 0),
    subtotal bigint NOT NULL,
    tax_rate_bp integer NOT NULL CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    tax_name text NOT NULL DEFAULT '',
    reverse_charge boolean NOT NULL DEFAULT false,
    tax_amount bigint NOT NULL,
    total bigint NOT NULL,
    -- What happens to it afterwards (the only columns an UPDATE may change):
    status text NOT NULL CHECK (status IN ('open', 'paid', 'credited', 'issued')),
    paid_at timestamptz,
    payment_failed_at timestamptz,  -- the latest failed attempt
    dunning_since timestamptz,      -- the first failure, or the due date passing unpaid
    collect_attempted_at timestamptz,  -- a provider was asked to charge a saved payment method
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (issuer, kind, seq),
    UNIQUE (issuer, number),
    CHECK (total = subtotal + tax_amount),
    CHECK (period_end IS NULL OR period_start IS NULL OR period_end >= period_start),
    -- an invoice charges (nothing negative), a credit note refunds (nothing positive) what it corrects
    CHECK ((kind = 'invoice' AND corrects_invoice_id IS NULL AND subtotal >= 0 AND tax_amount >= 0)
        OR (kind = 'credit_note' AND corrects_invoice_id IS NOT NULL AND subtotal <= 0 AND tax_amount <= 0))
);
CREATE INDEX billing_invoices_tenant ON public.billing_invoices (tenant_id, issued_at DESC);
CREATE INDEX billing_invoices_unpaid ON public.billing_invoices (dunning_since) WHERE status = 'open';
CREATE INDEX billing_invoices_due ON public.billing_invoices (due_at) WHERE status = 'open';

-- Immutable once issued: the issued fields never change and no invoice is deleted, whoever asks
-- (the serving role has no DELETE either; this also holds for the table's owner).
CREATE FUNCTION public.billing_invoice_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        RAISE EXCEPTION 'issued invoices cannot be deleted' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'invoice % is issued and cannot be deleted; issue a credit note', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF EXISTS (SELECT 1 FROM jsonb_array_elements(NEW.lines) l
                    WHERE (l->>'amount')::bigint IS DISTINCT FROM (l->>'quantity')::bigint * (l->>'unit_amount')::bigint
                       OR (l->>'quantity')::bigint < 1)
           OR (SELECT sum((l->>'amount')::bigint) FROM jsonb_array_elements(NEW.lines) l) IS DISTINCT FROM NEW.subtotal THEN
            RAISE EXCEPTION 'invoice lines do not add up to the subtotal' USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.id, NEW.tenant_id, NEW.issuer, NEW.kind, NEW.seq, NEW.number, NEW.corrects_invoice_id, NEW.reason,
        NEW.currency, NEW.period_start, NEW.period_end, NEW.issued_at, NEW.due_at, NEW.language, NEW.seller,
        NEW.buyer, NEW.lines, NEW.subtotal, NEW.tax_rate_bp, NEW.tax_name, NEW.reverse_charge, NEW.tax_amount,
        NEW.total)
       IS DISTINCT FROM
       (OLD.id, OLD.tenant_id, OLD.issuer, OLD.kind, OLD.seq, OLD.number, OLD.corrects_invoice_id, OLD.reason,
        OLD.currency, OLD.period_start, OLD.period_end, OLD.issued_at, OLD.due_at, OLD.language, OLD.seller,
        OLD.buyer, OLD.lines, OLD.subtotal, OLD.tax_rate_bp, OLD.tax_name, OLD.reverse_charge, OLD.tax_amount,
        OLD.total) THEN
        RAISE EXCEPTION 'invoice % is issued and cannot be changed; issue a credit note', OLD.number
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER billing_invoice_guard BEFORE INSERT OR UPDATE OR DELETE ON public.billing_invoices
    FOR EACH ROW EXECUTE FUNCTION public.billing_invoice_guard();
CREATE TRIGGER billing_invoice_no_truncate BEFORE TRUNCATE ON public.billing_invoices
    FOR EACH STATEMENT EXECUTE FUNCTION public.billing_invoice_guard();

-- Every payment attempt and its outcome, from any provider (manual: the admin who marked it).
CREATE TABLE public.billing_payments (
    id bigserial PRIMARY KEY,
    invoice_id bigint NOT NULL REFERENCES public.billing_invoices (id),
    tenant_id bigint NOT NULL,
    provider text NOT NULL,
    provider_ref text NOT NULL DEFAULT '',  -- e.g. Stripe's pi_... / cs_...
    outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
    amount bigint NOT NULL CHECK (amount >= 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    detail text NOT NULL DEFAULT '',
    recorded_by text NOT NULL DEFAULT '',  -- "admin:<id>", "stripe:<event id>"
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX billing_payments_invoice ON public.billing_payments (invoice_id);
CREATE UNIQUE INDEX billing_payments_once ON public.billing_payments (provider, provider_ref, outcome)
    WHERE provider_ref <> '';

-- Stripe events already handled: a redelivered event changes nothing.
CREATE TABLE public.billing_stripe_events (
    event_id text PRIMARY KEY,
    type text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Dunning steps taken per unpaid invoice, each once: past_due, reminder_1/3/7, suspended.
CREATE TABLE public.billing_dunning_steps (
    invoice_id bigint NOT NULL REFERENCES public.billing_invoices (id),
    step text NOT NULL CHECK (step IN ('past_due', 'reminder_1', 'reminder_3', 'reminder_7', 'suspended')),
    done_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (invoice_id, step)
);

REVOKE ALL ON public.billing_accounts, public.billing_tax_rates, public.billing_invoice_counters,
    public.billing_invoices, public.billing_payments, public.billing_stripe_events, public.billing_dunning_steps
    FROM {{app_role}};
GRANT SELECT, INSERT, UPDATE ON public.billing_accounts, public.billing_invoice_counters, public.billing_invoices,
    public.billing_payments, public.billing_stripe_events, public.billing_dunning_steps TO {{app_role}};
GRANT SELECT, INSERT, UPDATE, DELETE ON public.billing_tax_rates TO {{app_role}};
GRANT DELETE ON public.billing_accounts TO {{app_role}};  -- erasing a workspace removes its billing details
GRANT USAGE ON SEQUENCE public.billing_invoices_id_seq, public.billing_payments_id_seq TO {{app_role}};
