-- Woofs: the schema and the dogs it knows.
CREATE SCHEMA IF NOT EXISTS woofs;

CREATE TABLE woofs.dogs (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    breed text,
    created_at timestamptz NOT NULL DEFAULT now()
);
