-- 080: natural keys for imported plant data (issue 17), so importing the same file twice
-- changes nothing and an edited row updates the record it named. Orders (order_number),
-- engraving items (id), jobs (job_id) and the seed 001 mappings have theirs already.

-- A plate is named by its batch, its number and its place in a pair (a front and a rear
-- plate share their number). import_key is that triple as a JSON array, written by the
-- import only: plates made otherwise keep NULL and are never matched by an import. Not a
-- UNIQUE constraint over the columns, because existing plates may repeat number and batch.
ALTER TABLE embossing.plates ADD COLUMN IF NOT EXISTS plate_position text NOT NULL DEFAULT 'single'
    CHECK (plate_position IN ('single', 'front', 'rear'));
ALTER TABLE embossing.plates ADD COLUMN IF NOT EXISTS import_key text;
CREATE UNIQUE INDEX IF NOT EXISTS plates_import_key ON embossing.plates (import_key)
    WHERE import_key IS NOT NULL;

-- The plant's code for a product (names change and repeat; codes do not). NULL for products
-- made before codes were given.
ALTER TABLE trackopz.products ADD COLUMN IF NOT EXISTS product_code text;
CREATE UNIQUE INDEX IF NOT EXISTS products_product_code_key ON trackopz.products (product_code)
    WHERE product_code IS NOT NULL;
