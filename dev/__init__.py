"""Dev tooling only, never imported by production code: the `make serve`/`make run` supervisor
(`stack`), demo traffic (`demo`), the embedded PostgreSQL (`postgres`), the Temporal dev server
(`temporal`), the SendGrid capture server (`email_capture`), the Razorpay stand-in (`razorpay/`)
and the one process helper (`procs`) that these, `bench` and the tests start servers with."""
