-- Runs once, on the first start of the postgres service (empty volume): the billing database.
-- Temporal's own databases (temporal, temporal_visibility) are created by temporalio/auto-setup.
CREATE DATABASE billing;
