-- Tax on reseller invoices, decided as billing decides it (addons/billing/tax.py): the reseller's
-- own billing details (its customers' invoices name it as seller, so EU reverse charge works from
-- its country; the platform's wholesale invoice to it is taxed by its country and VAT id), and the
-- tax written into each wholesale invoice when it is issued.
ALTER TABLE public.reseller
    ADD COLUMN address text NOT NULL DEFAULT '' CHECK (length(address) <= 1000),
    ADD COLUMN country text NOT NULL DEFAULT '' CHECK (country = '' OR country ~ '^[A-Z]{2}$'),
    ADD COLUMN vat_id text NOT NULL DEFAULT '' CHECK (length(vat_id) <= 20);

ALTER TABLE public.reseller_wholesale_invoice
    ADD COLUMN subtotal bigint,
    ADD COLUMN tax_rate_bp integer NOT NULL DEFAULT 0 CHECK (tax_rate_bp BETWEEN 0 AND 10000),
    ADD COLUMN tax_name text NOT NULL DEFAULT '',
    ADD COLUMN reverse_charge boolean NOT NULL DEFAULT false,
    ADD COLUMN tax_amount bigint NOT NULL DEFAULT 0 CHECK (tax_amount >= 0);
UPDATE public.reseller_wholesale_invoice SET subtotal = total;
ALTER TABLE public.reseller_wholesale_invoice ALTER COLUMN subtotal SET NOT NULL,
    ADD CHECK (total = subtotal + tax_amount);
