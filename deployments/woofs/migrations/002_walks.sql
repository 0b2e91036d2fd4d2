CREATE TABLE woofs.walks (
    id bigserial PRIMARY KEY,
    dog_id bigint NOT NULL REFERENCES woofs.dogs (id),
    started_at timestamptz NOT NULL,
    minutes integer NOT NULL CHECK (minutes > 0)
);
CREATE INDEX walks_dog_id ON woofs.walks (dog_id);
