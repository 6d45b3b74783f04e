"""All SQL of the system, by table group. Functions take a Session; the caller owns the
transaction.

Every locking read (`FOR UPDATE`) also sets `populate_existing`: a row already in the session's
identity map (read before the lock, e.g. a call peeked at to find its account) would otherwise
keep its stale attributes, and a concurrent finalization or refund could act on a state that
another transaction has already changed."""
