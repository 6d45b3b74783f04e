"""The PostgreSQL ledger: accounts, credit lots, holds, calls, coupons, refunds, API keys."""
