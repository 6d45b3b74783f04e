-- Runs once, on the first start of the postgres service (empty volume): the ledger's database
-- and Temporal's two (their schemas are set up by the temporal-schema job on every start).
CREATE DATABASE billing;
CREATE DATABASE temporal;
CREATE DATABASE temporal_visibility;
